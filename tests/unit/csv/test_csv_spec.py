"""Spec validation and row mapping of the declarative CSV mapping (pure)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine import ids
from engine.errors import ParseError, ValidationError
from engine.model import Condition, Observation, Person
from mappings.csv_decl import CsvSpec, compile_spec, header_delimiter, map_message, parse_spec
from tests.unit.csv.conftest import FNR1, FNR2, ctx, spec_dict

OSLO = ZoneInfo("Europe/Oslo")
HEADER = '"Prove_ID";"Analyse";"FNR";"PasNr";"Tatt";"Verdi";"Enhet"\n'


def chunk(*rows: str) -> bytes:
    return (HEADER + "".join(r + "\n" for r in rows)).encode()


def test_spec_rejects_unknown_field_and_missing_required_field() -> None:
    with pytest.raises(ValidationError) as e:
        parse_spec(spec_dict(fields={"colour": "x"}))
    assert e.value.code == "SPEC_INVALID" and "colour" in str(e.value)
    with pytest.raises(ValidationError, match="needs fields"):
        parse_spec(spec_dict(fields={"unit": "enhet"}))


def test_spec_rejects_unknown_table_reserved_field_and_no_subject() -> None:
    with pytest.raises(ValidationError, match="unknown table"):
        parse_spec(spec_dict(fields={"code": {"column": "a", "table": "nope"}}))
    with pytest.raises(ValidationError, match="subject"):
        parse_spec(spec_dict(fields={"code": "a", "subject": "b"}))
    with pytest.raises(ValidationError):
        parse_spec(spec_dict(subject={"scope": "x"}))
    with pytest.raises(ValidationError, match="exactly one"):
        parse_spec(spec_dict(fields={"code": {"column": "a", "const": "b"}}))


def test_spec_extra_keys_forbidden() -> None:
    with pytest.raises(ValidationError):
        parse_spec(spec_dict(colour="blue"))


def test_columns_are_normalised() -> None:
    spec = CsvSpec.model_validate(spec_dict(key=["Prove ID", "ANALYSE"]))
    assert spec.columns()[:2] == ["prove_id", "analyse"]


def test_maps_rows_to_observations_with_links() -> None:
    res = map_message(
        chunk(f"P1;HB;{FNR1};L7;05.01.2026 08:30;13,4;g/dL", f"P2;XY;{FNR2};;06.01.2026;1 234,5;"), ctx(spec_dict())
    )
    assert res.warnings == ("UNMAPPED_CODE:column analyse",)
    a, b = res.records
    assert isinstance(a, Observation) and a.key == "lab-x|observation|P1|HB"
    assert a.subject.kind == "FNR" and a.subject.value == FNR1
    assert a.event_time == datetime(2026, 1, 5, 8, 30, tzinfo=OSLO)
    assert a.value_num == 13.4 and a.unit == "g/dL"
    assert (a.code.system, a.code.code, a.code.display) == ("2.16.578.1.12.4.1.1.7280", "NOR05172", "B-Hemoglobin")
    assert (b.code.system, b.code.code, b.value_num, b.unit) == ("urn:lab-x", "XY", 1234.5, None)
    assert len(res.links) == 1 and {res.links[0].a.kind, res.links[0].b.kind} == {"FNR", "LOCAL"}
    assert a.provenance.envelope_id == "e1" and res.message_type == "CSV_OBSERVATION"


def test_invalid_national_number_is_kept_and_flagged_local_preferred() -> None:
    res = map_message(chunk("P1;HB;12345678901;L7;05.01.2026;1;g"), ctx(spec_dict()))
    rec = res.records[0]
    assert rec.subject.value == "L7" and rec.subject.kind == "LOCAL"
    flagged = [i for link in res.links for i in (link.a, link.b) if i.flags]
    assert flagged and flagged[0].flags == ("INVALID_NUMBER",)


def test_key_never_contains_a_national_number() -> None:
    res = map_message(chunk(f"{FNR1};HB;{FNR1};;05.01.2026;1;g"), ctx(spec_dict()))
    assert FNR1 not in res.records[0].key and ids.find_valid_numbers(res.records[0].key) == []


def test_bad_rows_become_warning_codes_without_values() -> None:
    res = map_message(
        chunk(
            f"P1;HB;{FNR1};;31.02.2026;1;g",
            f"P2;HB;{FNR1};;01.02.2026;abc;g",
            "P3;HB;;;01.02.2026;1;g",
            f"P4;;{FNR1};;01.02.2026;1;g",
        ),
        ctx(spec_dict()),
    )
    assert res.records == ()
    assert res.warnings == (
        "BAD_DATE: row 1 column tatt",
        "BAD_NUMBER: row 2 column verdi",
        "MISSING_IDENTIFIER: row 3 column fnr",
        "MISSING_VALUE: row 4 column analyse",
    )
    assert not any(FNR1 in w for w in res.warnings)


def test_short_rows_padded_long_rows_rejected() -> None:
    res = map_message(
        chunk(f"P1;HB;{FNR1};;05.01.2026", f"P2;HB;{FNR1};;05.01.2026;1;g;;", f"P3;HB;{FNR1};;05.01.2026;1;g;x"),
        ctx(spec_dict()),
    )
    assert [r.key.split("|")[2] for r in res.records] == ["P1", "P2"]
    assert res.warnings == ("COLUMN_COUNT: row 3 column *",)


def test_missing_column_in_header_is_a_permanent_error() -> None:
    with pytest.raises(ValidationError) as e:
        map_message(b'"a";"b"\n1;2\n', ctx(spec_dict()))
    assert e.value.code == "MISSING_COLUMN"


def test_bad_charset_and_empty_chunk() -> None:
    with pytest.raises(ParseError) as e:
        map_message("a;b\næ;ø\n".encode("cp1252"), ctx(spec_dict()))
    assert e.value.code == "ENCODING_ERROR"
    with pytest.raises(ParseError):
        map_message(b"", ctx(spec_dict()))


def test_strict_table_rejects_unknown_codes_and_constants() -> None:
    spec = spec_dict(
        kind="condition",
        key=["prove_id"],
        fields={"code": {"column": "analyse", "table": "t"}, "role": {"const": "main"}, "onset": {"column": "tatt"}},
        constants={"text": "fra liste"},
        tables={"t": {"system": "2.16.578.1.12.4.1.1.7170", "strict": True, "codes": {"DM": "T90"}}},
    )
    res = map_message(chunk(f"P1;DM;{FNR1};;05.01.2026;;", f"P2;ZZ;{FNR1};;05.01.2026;;"), ctx(spec))
    (c,) = res.records
    assert isinstance(c, Condition) and c.code.code == "T90" and c.role == "main" and c.text == "fra liste"
    assert res.warnings == ("UNKNOWN_CODE: row 2 column analyse",)


def test_person_section_and_person_kind() -> None:
    spec = spec_dict(person={"fields": {"family_name": "enhet", "birth_date": {"column": "tatt"}}})
    recs = map_message(chunk(f"P1;HB;{FNR1};L1;05.01.2026;1;Ødegård"), ctx(spec)).records
    person = recs[1]
    assert isinstance(person, Person) and person.family_name == "Ødegård"
    assert person.birth_date == date(2026, 1, 5) and len(person.identifiers) == 2
    assert FNR1 not in person.key
    pspec = spec_dict(kind="person", key=["fnr"], fields={"family_name": "enhet"})
    (p,) = map_message(chunk(f"P1;HB;{FNR1};;05.01.2026;1;Æsøy"), ctx(pspec)).records
    assert p.kind == "person" and p.family_name == "Æsøy" and len(p.identifiers) == 1


def test_iso_and_strptime_formats_and_aware_times() -> None:
    spec = spec_dict(event_time={"column": "tatt", "formats": ["iso", "%Y%m%d"]})
    recs = map_message(
        chunk(f"P1;HB;{FNR1};;2026-07-01T10:00:00+00:00;1;g", f"P2;HB;{FNR1};;20260701;1;g"), ctx(spec)
    ).records
    assert recs[0].event_time.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert recs[1].event_time == datetime(2026, 7, 1, tzinfo=OSLO)


@pytest.mark.parametrize(
    "line,expected", [('"a;b","c"', ","), ('"a";"b"', ";"), ('"a""x"\t"b"', "\t"), ("a;b;c", ";"), ("a,b", ",")]
)
def test_header_delimiter(line: str, expected: str) -> None:
    assert header_delimiter(line) == expected


def test_compiled_spec_is_cached() -> None:
    opts: dict[str, Any] = spec_dict()
    assert compile_spec(opts) is compile_spec(dict(opts))


def test_configured_delimiter_overrides_header() -> None:
    raw = b"prove_id|analyse|fnr|pasnr|tatt|verdi|enhet\nP1|HB|" + FNR1.encode() + b"||05.01.2026|1|g\n"
    assert len(map_message(raw, ctx(spec_dict(delimiter="|"))).records) == 1


def test_spaced_national_number_and_decomposed_header() -> None:
    spaced = f"{FNR1[:6]} {FNR1[6:]}"
    header = '"prove_id";"analyse";"fnr";"pasnr";"tatt";"verdi";"enhet"\n'
    raw = (header.replace("enhet", "ENHET ") + f"P1;HB;{spaced};;05.01.2026;1;g\n").encode()
    (rec,) = map_message(raw, ctx(spec_dict())).records
    assert rec.subject.kind == "FNR" and rec.subject.value == FNR1
    from mappings.csv_decl import normalise_column

    assert normalise_column("A\u030ase Dato") == "åse_dato"  # decomposed Å (NFD) -> NFC


def test_bad_constant_is_a_spec_error() -> None:
    with pytest.raises(ValidationError) as e:
        map_message(chunk(f"P1;HB;{FNR1};;05.01.2026;1;g"), ctx(spec_dict(constants={"ref_low": "lav"})))
    assert e.value.code == "SPEC_INVALID"
