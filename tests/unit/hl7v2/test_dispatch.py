"""map_message: dispatch by MSH-9, unsupported types, batches, strict mode, no personal data in errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine import ids
from engine.errors import ParseError, PermanentError, UnsupportedMessage, ValidationError
from mappings.hl7v2 import map_message
from mappings.hl7v2.strict import describe, validate_strict
from mappings.hl7v2.timeutil import OSLO, parse_date, parse_dtm
from tests.unit.hl7v2.conftest import fixture_bytes, make_ctx

FNR = ids.synthetic_fnr(13, 11, 69, 4)
assert FNR


def msg(mtype: str, ctrl: str = "1") -> bytes:
    return (f"MSH|^~\\&|A|F|||20260101||{mtype}|{ctrl}|P|2.5\rPID|1||{FNR}^^^^NNNOR||Nordmann^Kari\r").encode()


@pytest.mark.parametrize("mtype", ["ORM^O01", "ACK^A01", "ADT^A99", "QRY^A19", "SIU^S12", "ADT"])
def test_unsupported_types_name_the_type_only(mtype: str) -> None:
    with pytest.raises(UnsupportedMessage) as err:
        map_message(msg(mtype), make_ctx())
    assert err.value.code == "HL7_UNSUPPORTED_TYPE"
    assert mtype in str(err.value)
    assert FNR not in str(err.value) and "Nordmann" not in str(err.value)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\x02",
        b"hello",
        b"MSH|",
        b"MSH|^~\\&",
        b"PID|1||2",
        "MSH|^~\\&|ÆØÅ".encode(),
        b"MSH|^~\\&|A|F|||2026||ADT^A08|1|P|2.5\rPID",
        b"MSH|^~\\&|A|F|||2026||ORU^R01|1|P|2.5\rPID|1||x\rOBX|",
        b"MSH|^~\\&|A|F|||2026||MDM^T02|1|P|2.5\rPID|1||x\rTXA|",
        b"MSH|^~\\&|A|F|||2026||ADT^A40|1|P|2.5\rMRG|1",
        b"FHS|^~\\&\rBHS|^~\\&\rBTS|0\rFTS|1\r",
    ],
)
def test_bad_input_is_a_permanent_error_never_a_crash(raw: bytes) -> None:
    try:
        map_message(raw, make_ctx())
    except PermanentError as exc:
        assert exc.code.startswith("HL7_") or (exc.code == "TEXT_NOT_STORABLE" and b"\x00" in raw)


def test_batch_maps_every_message_and_merges() -> None:
    raw = b"BHS|^~\\&|X\r" + msg("ADT^A08", "1") + msg("ADT^A08", "2") + b"BTS|2\r"
    result = map_message(raw, make_ctx())
    assert [r.provenance.source_message_id for r in result.records] == ["1", "2"]
    assert result.message_type == "ADT^A08" and result.source_message_id is None


def test_batch_with_one_bad_message_fails_whole() -> None:
    raw = b"BHS|^~\\&|X\r" + msg("ADT^A08", "1") + msg("ORM^O01", "2") + b"BTS|2\r"
    with pytest.raises(UnsupportedMessage):
        map_message(raw, make_ctx())


def test_batch_of_mixed_types() -> None:
    oru = b"MSH|^~\\&|A|F|||20260101||ORU^R01|3|P|2.5\rPID|1||9^^^H\rOBR|1||F\rOBX|1|NM|X||1\r"
    result = map_message(msg("ADT^A08") + oru, make_ctx())
    assert result.message_type == "BATCH" and [r.kind for r in result.records] == [
        "person",
        "observation",
        "report",
        "requisition",
    ]


def test_provenance_from_context() -> None:
    rec = map_message(msg("ADT^A08", "CTRL-9"), make_ctx()).records[0]
    assert rec.provenance.source_message_id == "CTRL-9"
    assert (rec.provenance.adapter, rec.provenance.envelope_id) == ("hl7-test", "env-test-1")


def test_default_charset_from_context() -> None:
    raw = "MSH|^~\\&|A|F|||2026||ADT^A08|1|P|2.5\rPID|1||9^^^H||Ærlig^Øyvind\r".encode("cp1252")
    person = map_message(raw, make_ctx(default_charset="cp1252")).records[0]
    assert person.family_name == "Ærlig"


def test_validate_strict_valid_and_invalid() -> None:
    assert validate_strict(fixture_bytes("pyhl7_BHS-BTS_batch_v2.5.hl7")) == []
    problems = validate_strict(fixture_bytes("hapi_ADT-A03_v2.5_repetitions.hl7"))
    assert problems and all(p.startswith("HL7_STRICT_") for p in problems)
    assert not any("OSPEDALE" in p for p in problems)  # hl7apy quotes the value; we must not
    assert validate_strict(b"garbage") == ["HL7_NO_MSH: header"]


def test_strict_problems_never_carry_values() -> None:
    raw = fixture_bytes("no_ORU-R01_synthetic_8obx_8859-1.hl7")
    for problem in validate_strict(raw):
        assert FNR not in problem and "Ødegård" not in problem


def test_describe_wraps_value_quoting_errors() -> None:
    class MaxLengthReached(Exception):
        pass

    assert describe(ValueError(f"{FNR} is not an HL7 valid NM value")) == "HL7_STRICT_BAD_VALUE: value"
    assert FNR not in describe(MaxLengthReached(f"The value {FNR} exceed the max length: 5"))


def test_strict_option_rejects_invalid_structure() -> None:
    with pytest.raises(ValidationError) as err:
        map_message(fixture_bytes("dcm4che_ADT-A40_v2.5.1_merge.hl7"), make_ctx(strict=True))
    assert err.value.code == "HL7_STRICT_INVALID" and "New_Smith" not in str(err.value)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026", datetime(2026, 1, 1, tzinfo=OSLO)),
        ("20260315", datetime(2026, 3, 15, tzinfo=OSLO)),
        ("202603151014", datetime(2026, 3, 15, 10, 14, tzinfo=OSLO)),
        ("20260715101400.1234", datetime(2026, 7, 15, 10, 14, 0, 123400, tzinfo=OSLO)),
        ("20260315101400+0000", datetime(2026, 3, 15, 10, 14, tzinfo=UTC)),
        ("20260315101400-0500", datetime(2026, 3, 15, 15, 14, tzinfo=UTC)),
        ("20261315", None),
        ("04/24/2007", None),
        ("", None),
        ("2026031510140+01", None),
    ],
)
def test_parse_dtm(text: str, expected: datetime | None) -> None:
    assert parse_dtm(text) == expected


def test_summer_time_and_dates() -> None:
    t = parse_dtm("20260715120000")
    assert t is not None and t.utcoffset() is not None and t.utcoffset().total_seconds() == 7200  # type: ignore[union-attr]
    assert parse_date("198808181126+0215") is not None and str(parse_date("19880818")) == "1988-08-18"
    assert parse_date("1988") is None


def test_parse_error_codes_are_stable() -> None:
    with pytest.raises(ParseError) as err:
        map_message(b"PID|1", make_ctx())
    assert err.value.code == "HL7_NO_MSH"


def test_model_rejection_is_wrapped_without_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from mappings.hl7v2 import pid, tables

    monkeypatch.setattr(tables, "sex", lambda code: "Nordmann-sex")
    pid._person.cache_clear()  # a Person built before the patch would be reused
    with pytest.raises(PermanentError) as err:
        map_message(msg("ADT^A08"), make_ctx())
    assert err.value.code == "HL7_MAPPING_INVALID" and "sex" in str(err.value)
    assert "Nordmann" not in str(err.value) and FNR not in str(err.value)


def test_unsupported_type_with_odd_msh9_is_not_quoted() -> None:
    with pytest.raises(UnsupportedMessage) as err:
        map_message(msg(f"{FNR}^X"), make_ctx())
    assert FNR not in str(err.value) and "unreadable" in str(err.value)
