"""Patient identity in KITH messages: national numbers, scoping, flags, Person records, one citizen per component."""

from __future__ import annotations

import pytest

from engine import ids
from engine.errors import MappingError
from engine.model import Identifier
from tests.unit.kith.helpers import KITH, mapped, records

SYNTH = (KITH / "synthetic_svarrapport_v1.4.xml").read_text(encoding="utf-8")
FNR = "24838541212"  # synthetic (month + 80), 1985-03-24, female
LAB = "HER:8800001"
W1, W2 = (3, 7, 6, 1, 8, 9, 4, 5, 2), (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def with_check_digits(base: str) -> str:
    d = [int(x) for x in base]
    k1 = (11 - sum(w * x for w, x in zip(W1, d, strict=True)) % 11) % 11
    k2 = (11 - sum(w * x for w, x in zip(W2, d + [k1], strict=True)) % 11) % 11
    assert k1 < 10 and k2 < 10, base
    return base + str(k1) + str(k2)


def svar(off_id: str, type_off_id: str = "FNR", extra: str = "") -> bytes:
    xml = SYNTH.replace(f"<OffId>{FNR}</OffId>", f"{extra}<OffId>{off_id}</OffId>")
    return xml.replace('<TypeOffId V="FNR"', f'<TypeOffId V="{type_off_id}"').encode()


def person_of(raw: bytes):  # type: ignore[no-untyped-def]
    result = mapped(raw)
    (person,) = records(result, "person")
    return result, person


def test_valid_fnr_is_the_subject_and_linked_to_the_lab_id() -> None:
    result, person = person_of(svar(FNR))
    assert person.subject == ids_fnr(FNR)
    assert {i.kind for i in person.identifiers} == {"FNR", "LOCAL"}
    assert [(link.a.value, link.b.value) for link in result.links] == [(FNR, "L-7700123")]
    assert all(r.subject == person.subject for r in result.records)
    assert (person.family_name, person.given_name, person.birth_date.isoformat()) == ("Testesen", "Kari", "1985-03-24")


def ids_fnr(value: str) -> Identifier:
    return Identifier(system=ids.OID_FNR, value=value, kind="FNR")


def test_invalid_fnr_is_kept_flagged_and_linked() -> None:
    bad = FNR[:-1] + str((int(FNR[-1]) + 1) % 10)
    result, person = person_of(svar(bad))
    flagged = [i for i in person.identifiers if i.value == bad]
    assert flagged and flagged[0].flags == ("INVALID_NUMBER",) and flagged[0].kind == "LOCAL"
    assert flagged[0].system == ids.OID_LOCAL_PREFIX + LAB
    assert any(bad in (link.a.value, link.b.value) for link in result.links)
    assert person.subject.value == "L-7700123"  # a clean local id beats a broken number


def test_h_number_is_scoped_to_the_sender_organisation() -> None:
    hnr = with_check_digits("244585410")  # day 24, month 05 + 40, 1985
    assert ids.classify(hnr) is ids.IdKind.HNR
    _, person = person_of(svar(hnr, "HNR"))
    (ident,) = [i for i in person.identifiers if i.value == hnr]
    assert (ident.kind, ident.system, ident.flags) == ("HNR", ids.OID_HNR_PREFIX + LAB, ())


def test_short_h_number_of_unknown_patient_is_kept_and_flagged() -> None:
    _, person = person_of(svar("54321", "HNR").replace(b"Testesen, Kari", b"Ukjent kvinne"))
    (ident,) = [i for i in person.identifiers if i.value == "54321"]
    assert (ident.kind, ident.system, ident.flags) == ("HNR", ids.OID_HNR_PREFIX + LAB, ("INVALID_NUMBER",))
    assert (person.family_name, person.given_name) == ("Ukjent kvinne", None)


def test_d_number_is_national() -> None:
    dnr = with_check_digits("648385410")
    _, person = person_of(svar(dnr, "DNR"))
    assert (person.subject.kind, person.subject.system) == ("DNR", ids.OID_DNR)


def test_birth_date_contradicting_the_number_is_flagged_and_the_number_wins() -> None:
    _, person = person_of(svar(FNR, extra='<DateOfBirth V="1971-11-08"/><Sex V="2" DN="Kvinne"/>'))
    assert person.flags == ("BIRTHDATE_MISMATCH",)
    assert person.birth_date.isoformat() == "1985-03-24" and person.sex == "female"
    _, same = person_of(svar(FNR, extra='<DateOfBirth V="1985-03-24"/>'))
    assert same.flags == ()


def test_birth_date_without_zero_padding_is_parsed_and_compared_with_the_number() -> None:
    _, same = person_of(svar(FNR, extra='<DateOfBirth V="1985-3-24"/>'))
    assert same.flags == () and same.birth_date.isoformat() == "1985-03-24"
    _, other = person_of(svar(FNR, extra='<DateOfBirth V="1991-12-4"/>'))
    assert other.flags == ("BIRTHDATE_MISMATCH",) and other.birth_date.isoformat() == "1985-03-24"


def test_birth_date_without_zero_padding_is_kept_when_there_is_no_number() -> None:
    raw = svar("54321", "HNR", extra='<DateOfBirth V="1991-12-4"/>')
    _, person = person_of(raw)
    assert person.birth_date.isoformat() == "1991-12-04"


def test_message_without_patient_identifier_is_rejected() -> None:
    raw = SYNTH.replace(f"<OffId>{FNR}</OffId>", "").replace("<IdByServProvider>L-7700123</IdByServProvider>", "")
    with pytest.raises(MappingError) as info:
        mapped(raw.encode())
    assert info.value.code == "KITH_NO_PATIENT"


def test_person_key_names_the_sender_but_not_the_number() -> None:
    _, person = person_of(svar(FNR))
    assert person.key.startswith(f"person:kith:{LAB}:") and FNR not in person.key


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def test_corpus_identifiers_give_one_component_per_real_person() -> None:
    uf, subjects = UnionFind(), {}
    for xml in sorted(KITH.glob("*.xml")):
        if "apprec" in xml.name:
            continue
        result = mapped(xml.name)
        for link in result.links:
            uf.union(link.a.key, link.b.key)
        for person in records(result, "person"):
            for ident in person.identifiers:
                uf.union(person.subject.key, ident.key)
        subjects[xml.name] = {r.subject.key for r in result.records}
    line = f"{ids.OID_FNR}|13116900216"
    line_files = [n for n, keys in subjects.items() if any(uf.find(k) == uf.find(line) for k in keys)]
    not_line = {
        "sarepta_svarrapport-v1.4_patologi_histologi_ny.xml",
        "sarepta_plo-v1.6_utskrivningsrapport_ny.xml",
        "sarepta_plo-v1.6_pasientlogistikk_innlagt_ny.xml",
        "sarepta_plo-v1.6_pasientlogistikk_dodsfall_ny.xml",
        "synthetic_svarrapport_v1.4.xml",
        "synthetic_dialogmelding-v1.1_notater_vedlegg.xml",
    }
    assert set(line_files) == set(subjects) - not_line and len(line_files) == 18
    assert all(len({uf.find(k) for k in keys}) == 1 for keys in subjects.values())
    components: dict[str, set[str]] = {}
    for node in list(uf.parent):
        if node.startswith(ids.OID_FNR + "|"):
            components.setdefault(uf.find(node), set()).add(node)
    assert all(len(fnrs) == 1 for fnrs in components.values()), "a component holds two different FNRs"
    assert uf.find(line) != uf.find(f"{ids.OID_FNR}|15076500565")
