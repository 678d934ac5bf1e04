"""ADT beside PID and PV1: the visit's doctors (PV1, ROL), OBX -> Observations, DG1 -> Conditions,
NK1 -> contacts, PID telecom/language/marital status, and what the coverage declares for them."""

from __future__ import annotations

from engine import coverage
from engine.fhir.patient import patient
from engine.fhir.resources import resource
from engine.ids import synthetic_fnr
from engine.model import (
    Allergy,
    Condition,
    Document,
    Encounter,
    MappingResult,
    Observation,
    Person,
    Procedure,
    RecordStatus,
)
from mappings.hl7v2 import map_message
from tests.unit.hl7v2.conftest import make_ctx

FNR = synthetic_fnr(12, 3 + 80, 1985, 123)
assert FNR is not None

_BASE = (
    "MSH|^~\\&|PAS|HOSP|ENJ|KOMM|20260315101500||ADT^A01|C-1|P|2.5\r"
    "EVN|A01|20260315101400\r"
    f"PID|1||{FNR}^^^NOR^FNR||Nordmann^Kari||19850312|F|||Gate 2^^Bergen^^5003^NOR||"
    "^PRN^PH^^47^55^123456~kari@example.no^NET^Internet^kari@example.no|99887766^WPN^PH|nb|M\r"
    "PV1|1|I|MED^12^B^HOSP||||1234^Lege^Anne^^^^^^HPR&2.16.578.1.12.4.1.4.4&ISO|5678^Henvis^Per||"
    "KIR||||7|||9012^Vakt^Ola||V-9|||||||||||||||||||||||||20260315090000\r"
)


def _map(extra: str = "") -> MappingResult:
    return map_message((_BASE + extra).encode(), make_ctx())


def _one(result: MappingResult, kind: type) -> object:
    found = [r for r in result.records if isinstance(r, kind)]
    assert len(found) == 1
    return found[0]


def test_pv1_doctors_service_and_admit_source_on_the_encounter() -> None:
    enc = _one(_map(), Encounter)
    assert isinstance(enc, Encounter)
    assert [(p.role, p.name) for p in enc.parties or ()] == [
        ("attending", "Anne Lege"),
        ("referring", "Per Henvis"),
        ("admitting", "Ola Vakt"),
    ]
    assert (enc.hospital_service, enc.admit_source) == ("KIR", "7")
    res = resource(enc, "Patient/c1")
    assert res["serviceType"] == {"text": "KIR"}
    assert [p["type"][0]["text"] for p in res["participant"]] == ["attending", "referring", "admitting"]


def test_rol_person_is_a_party_of_the_encounter_with_its_role_code() -> None:
    enc = _one(_map("ROL|1|AD|PP^Primary Care Provider^HL70443|4321^Fastlege^Eva\r"), Encounter)
    assert isinstance(enc, Encounter)
    assert ("PP", "Eva Fastlege") in [(p.role, p.name) for p in enc.parties or ()]


def test_pid_telecom_language_marital_status() -> None:
    person = _one(_map(), Person)
    assert isinstance(person, Person)
    assert person.telecom == ("47 55 123456", "kari@example.no", "99887766")
    assert (person.language, person.marital_status) == ("nb", "married")
    res = patient("c1", person.identifiers, [person])
    assert res["telecom"][1] == {"system": "email", "value": "kari@example.no"}
    assert res["maritalStatus"] == {"text": "married"}


def test_nk1_contacts_need_someone_to_reach() -> None:
    nk1 = "NK1|1|Nordmann^Ola|SPO^Ektefelle|Gate 2^^Bergen|90011223^PRN^CP||EMERGENCY\rNK1|2||CHD\r"
    person = _one(_map(nk1), Person)
    assert isinstance(person, Person)
    assert person.contacts is not None and len(person.contacts) == 1
    kin = person.contacts[0]
    assert (kin.name, kin.relationship, kin.role, kin.telecom) == (
        "Ola Nordmann",
        "Ektefelle",
        "EMERGENCY",
        ("90011223",),
    )
    assert patient("c1", person.identifiers, [person])["contact"][0]["name"] == {"text": "Ola Nordmann"}


def test_person_without_pid_extras_keeps_its_fields_unset() -> None:
    raw = _BASE.replace("^PRN^PH^^47^55^123456~kari@example.no^NET^Internet^kari@example.no|99887766^WPN^PH|nb|M", "")
    person = _one(map_message(raw.encode(), make_ctx()), Person)
    assert isinstance(person, Person)
    assert (person.telecom, person.language, person.marital_status, person.contacts) == (None, None, None, None)


def test_obx_in_adt_is_an_observation_of_the_visit() -> None:
    result = _map("OBX|1|NM|8302-2^Body height^LN||172|cm|||||F|||20260315093000\r")
    obs = _one(result, Observation)
    assert isinstance(obs, Observation)
    assert (obs.code.code, obs.value_num, obs.unit, obs.status) == ("8302-2", 172.0, "cm", RecordStatus.FINAL)
    assert obs.key == "hl7v2|HOSP|observation|adt|V-9|8302-2"
    assert obs.effective_time is not None and obs.effective_time.hour == 9


def test_dg1_is_a_condition_of_the_encounter() -> None:
    result = _map(
        "DG1|1|ICD10|J18.9^Pneumoni, uspesifisert^ICD10|Pneumoni|20260315|W|||||||||1|1234^Lege^Anne\r"
        "DG1|2|ICD10|I10^Essensiell hypertensjon^ICD10||20260315|F|||||||||2\r"
        "DG1|3||^^^||20260315\r"
    )
    enc = _one(result, Encounter)
    conds = [r for r in result.records if isinstance(r, Condition)]
    assert [(c.code.code, c.role, c.status) for c in conds] == [
        ("J18.9", "main", RecordStatus.PRELIMINARY),
        ("I10", "secondary", RecordStatus.FINAL),
    ]
    assert isinstance(enc, Encounter)
    assert all(c.encounter_key == enc.key for c in conds)
    assert conds[0].text == "Pneumoni" and conds[0].onset_date is not None
    assert [p.role for p in conds[0].parties or ()] == ["diagnosing"]


def test_coverage_declares_billing_segments_ignored() -> None:
    raw = (_BASE + "IN1|1|HELFO^x|123|Forsikring AS\rGT1|1||Nordmann^Ola\rSFT|Vendor|1.0|PAS|42\r").encode()
    ctx = make_ctx()
    cov = coverage.measure(raw, ctx, "hl7v2", map_message(raw, ctx))
    unmapped = {p.path for p in cov.unmapped}
    assert not {p for p in unmapped if p.startswith(("IN1", "GT1", "SFT"))}


def test_mdm_sections_are_topic_codes_and_pid_extras_reach_the_person() -> None:
    raw = (
        "MSH|^~\\&|DOK|HOSP|ENJ|KOMM|20260315101500||MDM^T02|M-1|P|2.5\r"
        "EVN|T02|20260315101400\r"
        f"PID|1||{FNR}^^^NOR^FNR||Nordmann^Kari||19850312|F|||||99887766^PRN^PH\r"
        "TXA|1|DS|TX|20260315||||||||D-1^DOK||||||AU\r"
        "OBX|1|TX|ANAM^Anamnese^L|1|Hoste i tre dager||||||F\r"
        "OBX|2|TX|ANAM^Anamnese^L|1|Feber||||||F\r"
        "OBX|3|TX|VURD^Vurdering^L|1|Pneumoni||||||F\r"
    ).encode()
    result = map_message(raw, make_ctx())
    doc = _one(result, Document)
    assert isinstance(doc, Document)
    assert [c.code for c in doc.topic_codes or ()] == ["ANAM", "VURD"]
    person = _one(result, Person)
    assert isinstance(person, Person) and person.telecom == ("99887766",)


def test_al1_is_an_allergy_valid_as_fhir() -> None:
    result = _map("AL1|1|DA|Z01CE01^Penicillin^ATC|SV|Anafylaksi|20200115\rAL1|2|FA|^^\r")
    allergy = _one(result, Allergy)
    assert isinstance(allergy, Allergy)
    assert (allergy.code.code, allergy.category, allergy.severity, allergy.reaction) == (
        "Z01CE01",
        "medication",
        "severe",
        "Anafylaksi",
    )
    assert allergy.identified_date is not None
    res = resource(allergy, "Patient/c1")
    assert res["resourceType"] == "AllergyIntolerance" and res["patient"] == {"reference": "Patient/c1"}
    assert res["reaction"][0] == {"manifestation": [{"text": "Anafylaksi"}], "severity": "severe"}


def test_pr1_is_a_procedure_of_the_encounter() -> None:
    result = _map("PR1|1||JKA21^Laparoskopisk appendektomi^NCSP|Appendektomi|202603151200||||||5555^Kirurg^Kim\r")
    proc = _one(result, Procedure)
    enc = _one(result, Encounter)
    assert isinstance(proc, Procedure) and isinstance(enc, Encounter)
    assert (proc.code.code, proc.text, proc.encounter_key) == ("JKA21", "Appendektomi", enc.key)
    assert proc.performed is not None and [p.role for p in proc.parties or ()] == ["surgeon"]
    res = resource(proc, "Patient/c1")
    assert res["status"] == "completed" and res["performedDateTime"].startswith("2026-03-15T12:00")
