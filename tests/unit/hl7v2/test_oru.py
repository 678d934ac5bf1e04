"""ORU^R01 -> Observations: keys stable across corrections, statuses, value types, times, specimen."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest

from engine.errors import ParseError, ValidationError
from engine.model import Observation, RecordStatus
from mappings.hl7v2 import map_message
from mappings.hl7v2.timeutil import OSLO
from mappings.hl7v2.values import MIME_SYSTEM, number, reference_range
from tests.unit.hl7v2.conftest import fixture_bytes, make_ctx, observations

NO_ORU = "no_ORU-R01_synthetic_8obx_8859-1.hl7"


def oru(
    obx: str,
    obr: str = "OBR|1|P-1|F-1^LAB||||20260316070000|||||||||||||||20260316090000|||F",
    msh7: str = "20260316091500",
) -> bytes:
    return (f"MSH|^~\\&|LAB|LABFAC|||{msh7}||ORU^R01|M-1|P|2.5\rPID|1||900^^^HOSP^PI\r{obr}\r{obx}\r").encode()


def one(raw: bytes) -> Observation:
    (obs,) = observations(map_message(raw, make_ctx()))
    return obs


def test_norwegian_fixture_eight_observations() -> None:
    result = map_message(fixture_bytes(NO_ORU), make_ctx())
    obs = observations(result)
    assert len(obs) == 8 and result.message_type == "ORU^R01"
    hb, leuk, trc, crp, na, btype, bact, comment = obs
    assert (hb.value_num, hb.unit, hb.ref_low, hb.ref_high) == (13.5, "g/dL", 11.7, 15.3)
    assert leuk.value_num == 7.2  # decimal comma
    assert (trc.abnormal_flag, crp.comparator, crp.value_num, crp.ref_high) == ("H", "<", 5.0, 5.0)
    assert (na.value_type, na.comparator, na.value_num) == ("SN", ">", 150.0)
    assert btype.value_text == "A Rh(D) positiv"
    assert bact.value_code is not None and bact.value_code.code == "112283007"
    assert bact.status is RecordStatus.PRELIMINARY
    assert comment.value_text == "Prøven er hemolysert.\nTolkes med forsiktighet; spør lab ved tvil."
    assert hb.specimen is not None and hb.specimen.code == "BLD"
    assert hb.effective_time == datetime(2026, 3, 16, 8, 0, tzinfo=OSLO)  # OBX-14
    assert leuk.effective_time == datetime(2026, 3, 16, 7, 0, tzinfo=OSLO)  # OBR-7
    assert hb.event_time == datetime(2026, 3, 16, 9, 0, tzinfo=OSLO)  # OBR-22
    assert hb.code.system == "2.16.578.1.12.4.1.1.7280" and hb.report_id == "LAB-555001@LABSYS"
    assert len({r.key for r in obs}) == 8
    assert all(r.subject.kind == "FNR" for r in result.records)


def test_correction_keeps_key_and_is_newer() -> None:
    raw = fixture_bytes(NO_ORU)
    corrected = (
        raw.replace(b"NO-R01-0001", b"NO-R01-0002")
        .replace(b"20260316090000", b"20260316120000")
        .replace(b"||13.5|g/dL|11.7-15.3||||F|", b"||12.9|g/dL|11.7-15.3||||C|")
    )
    orig = observations(map_message(raw, make_ctx()))[0]
    corr = observations(map_message(corrected, make_ctx()))[0]
    assert corr.key == orig.key
    assert corr.status is RecordStatus.CORRECTED and corr.value_num == 12.9
    assert corr.event_time > orig.event_time
    assert corr.provenance.source_message_id == "NO-R01-0002"


def test_correction_without_newer_source_time_is_not_newer() -> None:
    raw = oru("OBX|1|NM|A^a^L||1||||||F")
    again = oru("OBX|1|NM|A^a^L||2||||||C")
    assert one(again).event_time == one(raw).event_time
    assert one(again).status is RecordStatus.CORRECTED and one(again).key == one(raw).key


@pytest.mark.parametrize(
    "status,expected",
    [
        ("F", RecordStatus.FINAL),
        ("C", RecordStatus.CORRECTED),
        ("P", RecordStatus.PRELIMINARY),
        ("X", RecordStatus.CANCELLED),
        ("D", RecordStatus.CANCELLED),
        ("I", RecordStatus.PRELIMINARY),
    ],
)
def test_result_status(status: str, expected: RecordStatus) -> None:
    assert one(oru(f"OBX|1|NM|A^a^L||1||||||{status}")).status is expected


def test_status_falls_back_to_obr25_then_final() -> None:
    assert one(oru("OBX|1|NM|A^a^L||1")).status is RecordStatus.FINAL  # OBR-25 F
    obs = one(oru("OBX|1|NM|A^a^L||1", obr="OBR|1||F-1"))
    assert obs.status is RecordStatus.FINAL and "STATUS_MISSING" in obs.flags


def test_key_uses_filler_then_placer_then_control_id() -> None:
    assert one(oru("OBX|1|NM|A^a^L|2|1")).key == "hl7v2|LABFAC|observation|F-1@LAB|A|2"
    assert one(oru("OBX|1|NM|A^a^L||1", obr="OBR|1|P-1")).key == "hl7v2|LABFAC|observation|P-1|A|"
    assert one(oru("OBX|1|NM|A^a^L||1", obr="OBR|1")).key == "hl7v2|LABFAC|observation|M-1|A|"


def test_duplicate_key_in_message_is_disambiguated() -> None:
    result = map_message(oru("OBX|1|NM|A^a^L||1\rOBX|2|NM|A^a^L||2"), make_ctx())
    a, b = observations(result)
    assert b.key == a.key + "#2" and "DUPLICATE_KEY_IN_MESSAGE" in b.flags


def test_event_time_falls_back_to_msh7() -> None:
    obs = one(oru("OBX|1|NM|A^a^L||1", obr="OBR|1||F-1"))
    assert obs.event_time == datetime(2026, 3, 16, 9, 15, tzinfo=OSLO)


@pytest.mark.parametrize(
    "obx,fields",
    [
        ("OBX|1|SN|A||^1^:^128", {"value_text": "1:128", "value_num": None}),
        ("OBX|1|SN|A||<=^0.5", {"comparator": "<=", "value_num": 0.5}),
        ("OBX|1|SN|A||^10^-^20", {"value_text": "10-20"}),
        ("OBX|1|NM|A||positive", {"value_text": "positive", "value_num": None}),
        ("OBX|1|NM|A||>=1,5", {"comparator": ">=", "value_num": 1.5}),
        ("OBX|1|ST|A||a\\T\\b~c", {"value_text": "a&b\nc"}),
        ("OBX|1|FT|A||line1\\.br\\line2", {"value_text": "line1\nline2"}),
        (
            "OBX|1|CE|A||^^^ALT^Alternate^LOCAL",
            {"value_code": {"code": "ALT", "display": "Alternate", "system": "LOCAL"}},
        ),
        ("OBX|1|NM|A||", {"value_num": None, "value_text": None}),
    ],
)
def test_value_types(obx: str, fields: dict[str, object]) -> None:
    obs = one(oru(obx)).model_dump(mode="json")
    for k, v in fields.items():
        assert obs[k] == v


def test_ed_base64_is_decoded_into_an_attachment() -> None:
    result = map_message(oru("OBX|1|ED|PDF^Report^L||LAB^AP^PDF^Base64^JVBERi0xLjQKJcfsj6IK"), make_ctx())
    (obs,) = observations(result)
    (att,) = result.attachments
    assert att.data == base64.b64decode("JVBERi0xLjQKJcfsj6IK") and att.content_type == "application/pdf"
    assert obs.value_attachment == att.ref(description="Report")
    assert obs.value_code is not None and (obs.value_code.system, obs.value_code.code) == (
        MIME_SYSTEM,
        "application/pdf",
    )
    assert obs.value_text is None and "ATTACHMENT_NOT_INLINED" not in obs.flags
    assert "JVBERi0" not in obs.model_dump_json()


def test_ed_that_does_not_decode_is_flagged_and_the_rest_kept() -> None:
    result = map_message(oru("OBX|1|ED|PDF^Report^L||LAB^AP^PDF^Base64^JVBER*i0x||||||F||||||||||||LAB"), make_ctx())
    (obs,) = observations(result)
    assert not result.attachments and obs.value_attachment is None
    assert "ATTACHMENT_DECODE_FAILED" in obs.flags and obs.performer == "LAB" and obs.status is RecordStatus.FINAL


def test_ed_in_an_unknown_encoding_is_named_not_inlined() -> None:
    (obs,) = observations(map_message(oru("OBX|1|ED|PDF^Report^L||LAB^TEXT^PLAIN^A^hello"), make_ctx()))
    assert obs.value_code is not None and obs.value_code.code == "text/plain"
    assert "ATTACHMENT_NOT_INLINED" in obs.flags and obs.value_attachment is None


def test_specimen_from_spm_when_obr15_empty() -> None:
    raw = oru("OBX|1|NM|A||1\rSPM|1|S-1||SER^Serum^HL70487")
    obs = one(raw)
    assert obs.specimen is not None and (obs.specimen.code, obs.specimen.display) == ("SER", "Serum")


def test_several_patients_and_orders() -> None:
    raw = (
        b"MSH|^~\\&|LAB|LABFAC|||20260316||ORU^R01|M-2|P|2.5\r"
        b"PID|1||900^^^HOSP^PI\rOBR|1||F-1\rOBX|1|NM|A||1\r"
        b"PID|2||901^^^HOSP^PI\rORC|RE||F-2\rOBR|1||F-2\rOBX|1|NM|A||2\r"
    )
    a, b = observations(map_message(raw, make_ctx()))
    assert (a.subject.value, b.subject.value) == ("900", "901")
    assert (a.report_id, b.report_id) == ("F-1", "F-2")


def test_cached_readings_are_scoped_by_facility_and_delimiters() -> None:
    """The same PID/OBX text read under another sending facility or other delimiters reads anew."""
    obx = b"OBX|1|NM|A^Alfa^L#X||1|mg|1-2|||||F\r"
    raw = oru(obx.decode()).replace(b"900^^^HOSP^PI", b"900")  # no authority: scoped by the facility
    first, other_fac = one(raw), one(raw.replace(b"|LABFAC|", b"|OTHERFAC|"))
    hashed = oru("OBX|1").replace(b"^", b"#").replace(b"OBX|1\r", b"")  # "#" as component separator
    other_delims = one(hashed + obx)
    assert first.subject.system.endswith(":LABFAC") and other_fac.subject.system.endswith(":OTHERFAC")
    assert (first.code.code, first.code.system) == ("A", "L#X")
    assert (other_delims.code.code, other_delims.code.display) == ("A^Alfa^L", "X")
    assert (first.ref_low, first.ref_high, other_delims.ref_low) == (1.0, 2.0, 1.0)


def test_observation_rejection_names_the_field_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.errors import MappingError
    from mappings.hl7v2 import values

    monkeypatch.setattr(values, "number", lambda text: (1.0, "about"))
    with pytest.raises(MappingError) as err:
        one(oru("OBX|1|NM|A||~1|||||F"))
    assert err.value.code == "HL7_MAPPING_INVALID" and str(err.value) == "canonical model rejected comparator"


def test_no_obx_is_a_dead_letter() -> None:
    with pytest.raises(ValidationError) as err:
        map_message(b"MSH|^~\\&|LAB|F|||2026||ORU^R01|1|P|2.5\rPID|1||9^^^H\rOBR|1||F\r", make_ctx())
    assert err.value.code == "HL7_NO_RESULTS"


_OBR = "OBR|1|P-1|F-1^LAB||||20260316070000|||||||||||||||20260316090000|||F"


@pytest.mark.parametrize("glue,field", [("", 25), (" ", 25), ("\t", 25), ("|", 26)])
def test_obx_glued_onto_obr_is_a_dead_letter_naming_the_position(glue: str, field: int) -> None:
    obx = "OBX|1|NM|NPU02319^Hemoglobin^NLK||13.5|g/dL|11.7-15.3||||F"
    with pytest.raises(ParseError) as err:
        map_message(oru(obx, obr=_OBR + glue + obx), make_ctx())
    assert err.value.code == "HL7_SEGMENTS_GLUED"
    assert f"segment 3 (OBR) at OBR-{field}" in str(err.value) and "13.5" not in str(err.value)


def test_second_obx_glued_onto_the_first_is_a_dead_letter() -> None:
    first = "OBX|1|NM|NPU02319^Hemoglobin^NLK||13.5|g/dL|11.7-15.3||||F|||20260316080000||||||||LAB^Lab"
    second = "OBX|2|NM|NPU01960^Leukocytter^NLK||7.2|10*9/L|3.5-10.0||||F"
    with pytest.raises(ParseError) as err:
        map_message(oru(first + second), make_ctx())
    assert err.value.code == "HL7_SEGMENTS_GLUED" and "segment 4 (OBX) at OBX-22" in str(err.value)


def test_a_field_ending_in_obx_is_not_glue() -> None:
    assert one(oru("OBX|1|ST|NOR1^Kode^NLK||XOBX|||||F")).value_text == "XOBX"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("12", (12.0, None)),
        ("<5", (5.0, "<")),
        (" >= 3.5 ", (3.5, ">=")),
        ("=4", (4.0, None)),
        ("-1.5", (-1.5, None)),
        (".5", (0.5, None)),
        ("abc", (None, None)),
        ("1.2.3", (None, None)),
    ],
)
def test_number(text: str, expected: tuple[float | None, str | None]) -> None:
    assert number(text) == expected


@pytest.mark.parametrize(
    "text,low,high",
    [
        ("3.5-5.0", 3.5, 5.0),
        ("3,5 - 5,0", 3.5, 5.0),
        ("<5", None, 5.0),
        (">10", 10.0, None),
        ("-2--1", -2.0, -1.0),
        ("4.3 to 6.2", 4.3, 6.2),
        ("4,3 - 6,2", 4.3, 6.2),
        (">=10", 10.0, None),
        ("< 0.6", None, 0.6),
        ("neg", None, None),
    ],
)
def test_reference_range(text: str, low: float | None, high: float | None) -> None:
    out = reference_range(text)
    assert (out.get("ref_low"), out.get("ref_high"), out["reference_range"]) == (low, high, text)


def test_obx7_written_with_to_gives_low_and_high() -> None:
    obs = one(oru("OBX|1|NM|NPU02319^Hemoglobin^NLK||5.1|10*12/L|4.3 to 6.2||||F"))
    assert (obs.reference_range, obs.ref_low, obs.ref_high) == ("4.3 to 6.2", 4.3, 6.2)


@pytest.mark.parametrize("obx6", ["mg/L FEU", "mg/L FEU^D-dimer FEU^L", "^mg/L FEU", "mg/L  FEU"])
def test_obx6_unit_keeps_inner_spaces(obx6: str) -> None:
    unit = obx6.split("^")[0] or obx6.split("^")[1]
    assert one(oru(f"OBX|1|NM|NPU28506^D-dimer;P^NLK||0.4|{obx6}|< 0.5||||F")).unit == unit
