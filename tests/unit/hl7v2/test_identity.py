"""PID identifiers (Norwegian national numbers, local ids, links) and the identity events A40/A47/A24."""

from __future__ import annotations

import pytest

from engine import ids
from engine.errors import ParseError, ValidationError
from mappings.hl7v2 import map_message
from tests.unit.hl7v2.conftest import make_ctx

FNR = ids.synthetic_fnr(13, 11, 69, 4)  # 13916900443
DNR = ids.synthetic_fnr(53, 11, 69, 4)  # D-number form (day + 40)
FNR2 = ids.synthetic_fnr(2, 2, 90, 1)
assert FNR and DNR and FNR2
BAD_FNR = FNR[:-1] + str((int(FNR[-1]) + 1) % 10)


def adt(pid3: str, event: str = "A08", extra: str = "") -> bytes:
    return (
        f"MSH|^~\\&|PAS|HOSP|ENJ|KOMM|20260315101500||ADT^{event}|C-{event}|P|2.5||||||8859/1\r"
        f"EVN|{event}|20260315101400\r"
        f"PID|1||{pid3}||Nordmann^Kari||19691113|F\r{extra}"
    ).encode("iso-8859-1")


@pytest.mark.parametrize(
    "cx,kind",
    [
        (f"{FNR}^^^&2.16.578.1.12.4.1.4.1&ISO^NNNOR", "FNR"),
        (f"{FNR}^^^^NNNOR", "FNR"),
        (f"{FNR}^^^FNR", "FNR"),
        (f"{FNR}^^^^FNR", "FNR"),
        (f"{DNR}^^^&2.16.578.1.12.4.1.4.2&ISO^NNNOR", "DNR"),
        (f"{DNR}^^^^DNR", "DNR"),
        (f"{FNR}^^^^NH", "FNR"),
    ],
)
def test_national_numbers_recognised(cx: str, kind: str) -> None:
    person = map_message(adt(cx), make_ctx()).records[0]
    assert person.subject.kind == kind
    assert person.subject.system == {"FNR": ids.OID_FNR, "DNR": ids.OID_DNR}[kind]


def test_invalid_national_number_is_kept_as_flagged_local_id() -> None:
    result = map_message(adt(f"{BAD_FNR}^^^&2.16.578.1.12.4.1.4.1&ISO^NNNOR~77^^^HOSP^PI"), make_ctx())
    person = result.records[0]
    bad = [i for i in person.identifiers if i.value == BAD_FNR]
    assert bad and bad[0].kind == "LOCAL" and "INVALID_NUMBER" in bad[0].flags
    assert "HL7_INVALID_NATIONAL_ID" in result.warnings
    assert person.subject.value == "77"  # a valid local id outranks a flagged number
    assert len(result.links) == 1


def test_eleven_digits_without_declaration_stay_local() -> None:
    person = map_message(adt(f"{FNR}^^^HOSP^PI"), make_ctx()).records[0]
    assert person.subject.kind == "LOCAL"
    assert person.subject.system == ids.OID_LOCAL_PREFIX + "HOSP"


def test_local_id_scope_falls_back_to_sending_facility() -> None:
    person = map_message(adt("4711"), make_ctx()).records[0]
    assert person.subject.system == ids.OID_LOCAL_PREFIX + "HOSP"


def test_subject_is_best_identifier_and_all_are_linked() -> None:
    pid3 = f"55^^^HOSP^PI~{DNR}^^^^NNNOR~{FNR}^^^&2.16.578.1.12.4.1.4.1&ISO^NNNOR"
    result = map_message(adt(pid3), make_ctx())
    person = result.records[0]
    assert person.subject.value == FNR
    assert {i.value for i in person.identifiers} == {"55", DNR, FNR}
    assert all(link.reason == "same-message" for link in result.links)
    assert {frozenset((lk.a.value, lk.b.value)) for lk in result.links} == {
        frozenset(("55", DNR)),
        frozenset(("55", FNR)),
    }


def test_pid_without_identifiers_is_rejected() -> None:
    with pytest.raises(ValidationError) as err:
        map_message(adt(""), make_ctx())
    assert err.value.code == "HL7_NO_PATIENT_ID"


def test_missing_pid_is_rejected() -> None:
    raw = b"MSH|^~\\&|PAS|HOSP|||20260315||ADT^A08|1|P|2.5\rEVN|A08|20260315\r"
    with pytest.raises(ParseError) as err:
        map_message(raw, make_ctx())
    assert err.value.code == "HL7_NO_PID"


def test_a40_merge_links_prior_ids() -> None:
    raw = adt(f"{FNR}^^^^NNNOR~900^^^HOSP^PI", "A40", "MRG|800^^^HOSP^PI~801^^^HOSP^PI\r")
    result = map_message(raw, make_ctx())
    merges = [lk for lk in result.links if lk.reason == "merge"]
    assert {(lk.a.value, lk.b.value) for lk in merges} == {(FNR, "800"), (FNR, "801")}
    assert [r.kind for r in result.records] == ["person"]


def test_a40_several_pairs_and_missing_mrg() -> None:
    raw = adt("900^^^HOSP^PI", "A40", "MRG|800^^^HOSP^PI\rPID|1||901^^^HOSP^PI\rMRG|801^^^HOSP^PI\r")
    merges = {(lk.a.value, lk.b.value) for lk in map_message(raw, make_ctx()).links}
    assert merges == {("900", "800"), ("901", "801")}
    with pytest.raises(ParseError) as err:
        map_message(adt("900^^^HOSP^PI", "A40"), make_ctx())
    assert err.value.code == "HL7_NO_MRG"


def test_a47_replaces_and_a24_links() -> None:
    a47 = map_message(adt("900^^^HOSP^PI", "A47", "MRG|800^^^HOSP^PI\r"), make_ctx())
    assert [(lk.reason, lk.b.value) for lk in a47.links] == [("replaces", "800")]
    a24 = map_message(adt("900^^^HOSP^PI", "A24", f"PID|2||{FNR2}^^^^NNNOR\r"), make_ctx())
    assert [(lk.reason, lk.a.value, lk.b.value) for lk in a24.links] == [("link", "900", FNR2)]


def test_a37_unlink_is_unsupported() -> None:
    from engine.errors import UnsupportedMessage

    with pytest.raises(UnsupportedMessage) as err:
        map_message(adt("900^^^HOSP^PI", "A37"), make_ctx())
    assert err.value.code == "HL7_UNSUPPORTED_TYPE" and "ADT^A37" in str(err.value)


def test_no_identifier_in_keys_or_reprs() -> None:
    result = map_message(adt(f"{FNR}^^^^NNNOR", extra="PV1|1|I|||||||||||||||||V1\r"), make_ctx())
    for rec in result.records:
        assert FNR not in rec.key and FNR not in repr(rec)
    assert all(FNR not in repr(lk) for lk in result.links)
