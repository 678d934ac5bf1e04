"""Every record the mappings make from the fixture messages renders as a FHIR R4 resource that validates with
``fhir.resources`` (its R4B models), and a fully populated record of each kind renders every field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from engine import ids
from engine.errors import PermanentError
from engine.fhir.codes import codeable, system_uri
from engine.fhir.patient import patient
from engine.fhir.refs import record_id, record_ref
from engine.fhir.resources import party, resource
from engine.model import (
    Attachment,
    CareEvent,
    Coding,
    Condition,
    Document,
    Encounter,
    Medication,
    Observation,
    Party,
    PartyId,
    Person,
    Provenance,
    RecordBase,
    RecordStatus,
    Referral,
    Report,
    Requisition,
    Specimen,
    national_identifier,
)
from mappings.csv_decl import map_message as map_csv
from mappings.hl7v2 import map_message as map_hl7
from mappings.kith import map_message as map_kith
from tests import fixture_pairs
from tests.fixture_pairs import Pair

SUBJECT = "Patient/citizen-1"
MAPS = {"kith": map_kith, "hl7v2": map_hl7, "csv": map_csv}
PAIRS = [p for family in MAPS for p in fixture_pairs.mapped(family)]


def valid(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` after validation by its R4B model (raises on anything FHIR forbids)."""
    model = get_fhir_model_class(data["resourceType"]).model_validate(data)
    out: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return out


def _records(pair: Pair) -> list[RecordBase]:
    try:
        result = MAPS[pair.mapping](pair.raw(), pair.context)
    except PermanentError:
        return []
    return list(result.records)


@pytest.mark.parametrize("pair", PAIRS, ids=str)
def test_fixture_records_render_as_valid_fhir(pair: Pair) -> None:
    records = _records(pair)
    persons = [r for r in records if isinstance(r, Person)]
    for rec in records:
        if isinstance(rec, Person):
            continue
        data = valid(resource(rec, SUBJECT))
        assert data["id"] == record_id(rec.key)
        for p in rec.parties or ():
            valid(party(p))
    if persons:
        ids = {i for p in persons for i in (p.subject, *p.identifiers)}
        valid(patient("citizen-1", ids, persons))


SYNTHETIC_FNR = ids.synthetic_fnr(1, 1, 1980, 123)
assert SYNTHETIC_FNR is not None
SID = national_identifier(SYNTHETIC_FNR)
PROV = Provenance(adapter="lab", envelope_id="e1", source_message_id="m1")
T = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
GP = Party(
    role="requester",
    kind="practitioner",
    name="Lege Test",
    ids=(PartyId(system="2.16.578.1.12.4.1.4.4", value="9144900"),),
    organization="Legekontoret",
    organization_ids=(PartyId(system="2.16.578.1.12.4.1.2", value="8800001"),),
)
LAB = Party(role="performer", kind="organization", name="Lab", ids=(PartyId(system="2.16.578.1.12.4.1.2", value="59"),))
DOC = Party(role="responsible", kind="practitioner", name="Dr Ansvarlig")
PDF = Attachment.of(b"%PDF-1.4 test", "application/pdf")
NPU = Coding(system="2.16.578.1.12.4.1.1.7280", code="NPU02319", display="B-Hemoglobin")
LOCAL = Coding(system="urn:enjournal:local:lab", code="HB", display="Hb")


def _common(kind_key: str, **extra: Any) -> dict[str, Any]:
    return {"key": kind_key, "subject": SID, "event_time": T, "provenance": PROV, **extra}


FULL: list[RecordBase] = [
    Observation(
        **_common("o1"),
        code=NPU,
        alt_codes=(LOCAL,),
        code_text="Hemoglobin",
        value_type="NM",
        value_num=13.1,
        comparator="<",
        unit="g/dL",
        reference_range="11.7-15.3",
        ref_low=11.7,
        ref_high=15.3,
        abnormal_flag="L,xyz",
        effective_date=date(2026, 3, 1),
        issued=T,
        parties=(LAB, DOC),
        comments=("hemolysed",),
        report_key="r1",
        requisition_key="q1",
        specimen_key="s1",
        derived_from=("o0",),
        value_attachment=PDF.ref("scan"),
    ),
    Observation(
        **_common("o2"), code=Coding(code="UNSPECIFIED", display="Identifikasjon"), value_date=date(2026, 1, 2)
    ),
    Report(
        **_common("r1"),
        code=Coding(system="LN", code="58410-2"),
        category="lab",
        report_id="R-1",
        issued=T,
        effective_time=T,
        conclusion="Normal",
        conclusion_codes=(Coding(system="2.16.840.1.113883.6.96", code="17621005"),),
        result_keys=("o1", "o2"),
        requisition_key="q1",
        specimen_keys=("s1",),
        attachments=(PDF.ref("report"),),
        parties=(LAB, DOC),
        comments=("see note",),
    ),
    Requisition(
        **_common("q1"),
        status=RecordStatus.PRELIMINARY,
        placer_id="P-1",
        filler_id="F-1",
        codes=(NPU, LOCAL),
        priority="urgent",
        priority_code=Coding(system="2.16.578.1.12.4.1.1.8101", code="OHJELP"),
        requested_at=T,
        reason="tired",
        reason_codes=(Coding(system="2.16.578.1.12.4.1.1.7170", code="A04"),),
        parties=(GP, LAB),
    ),
    Specimen(
        **_common("s1"),
        sample_id="S-1",
        specimen_type=Coding(system="HL70070", code="BLD"),
        collected_date=date(2026, 3, 1),
        received_at=T,
        body_site=Coding(code="arm"),
        comments=("cold",),
    ),
    Condition(**_common("c1"), code=Coding(system="2.16.578.1.12.4.1.1.7170", code="L88"), onset_date=date(2025, 1, 1)),
    Document(
        **_common("d1"),
        status=RecordStatus.CORRECTED,
        doc_type=Coding(system="2.16.578.1.12.4.1.1.8279", code="DIALOG"),
        title="Notat",
        text="Hei",
        topic="Svar",
        topic_codes=(Coding(system="2.16.578.1.12.4.1.1.9069", code="1"),),
        attachments=(PDF.ref("vedlegg"),),
        parties=(Party(role="author", kind="practitioner", name="A"), Party(role="sender", kind="organization")),
    ),
    Encounter(**_common("e1"), encounter_class="inpatient", start=T, facility="Sykehuset"),
    Medication(**_common("m1"), code=Coding(system="2.16.578.1.12.4.1.1.7180", code="C03CA01"), dosage="1 x 1"),
    Referral(**_common("f1"), reason="pain", codes=(NPU,), priority="urgent", requester="GP", recipient="Hospital"),
    CareEvent(
        **_common("k1"), status=RecordStatus.CANCELLED, event_code=Coding(system="2.16.578.1.12.4.1.1.9121", code="1")
    ),
]


@pytest.mark.parametrize("rec", FULL, ids=lambda r: r.kind)
def test_full_record_renders_as_valid_fhir(rec: RecordBase) -> None:
    valid(resource(rec, SUBJECT))
    for p in rec.parties or ():
        valid(party(p))


def test_observation_carries_codings_range_notes_and_links() -> None:
    data = valid(resource(FULL[0], SUBJECT))
    assert [c["code"] for c in data["code"]["coding"]] == ["NPU02319", "HB"]
    assert data["code"]["text"] == "Hemoglobin"
    assert data["valueQuantity"] == {"value": 13.1, "unit": "g/dL", "comparator": "<"}
    assert data["referenceRange"][0]["low"]["value"] == 11.7 and data["referenceRange"][0]["text"] == "11.7-15.3"
    assert data["effectiveDateTime"] == "2026-03-01"
    assert data["note"] == [{"text": "hemolysed"}]
    assert data["specimen"]["reference"] == record_ref("specimen", "s1")
    assert {"reference": f"Binary/{PDF.sha256}"} in data["derivedFrom"]
    assert data["interpretation"][0]["coding"][0]["code"] == "L" and data["interpretation"][1]["text"] == "xyz"


def test_placeholder_code_becomes_text_and_date_value_a_date() -> None:
    data = valid(resource(FULL[1], SUBJECT))
    assert data["code"] == {"text": "Identifikasjon"}
    assert data["valueDateTime"] == "2026-01-02"


def test_report_lists_results_and_attachment_by_binary() -> None:
    data = valid(resource(FULL[2], SUBJECT))
    assert [r["reference"] for r in data["result"]] == [
        record_ref("observation", "o1"),
        record_ref("observation", "o2"),
    ]
    assert data["presentedForm"][0]["url"] == f"Binary/{PDF.sha256}"
    assert data["resultsInterpreter"][0]["display"] == "Dr Ansvarlig"


def test_requisition_priority_ids_and_requester() -> None:
    data = valid(resource(FULL[3], SUBJECT))
    assert data["priority"] == "urgent" and data["status"] == "active"
    assert [i["value"] for i in data["identifier"]] == ["P-1", "F-1"]
    assert data["requester"]["display"] == "Lege Test"
    assert valid(party(GP))["identifier"][0]["system"] == "urn:oid:2.16.578.1.12.4.1.4.4"


def test_patient_merges_demographics_and_lists_identifiers() -> None:
    older = Person(
        **_common("p1"), family_name="Nordmann", given_name="Kari", middle_name="Ann", birth_date=date(1980, 1, 1)
    )
    newer = Person(**{**_common("p2"), "event_time": datetime(2026, 4, 1, tzinfo=UTC)}, sex="female", address="Gate 1")
    data = valid(patient("c1", {SID}, [older, newer]))
    assert data["name"][0] == {"use": "official", "family": "Nordmann", "given": ["Kari", "Ann"]}
    assert data["gender"] == "female" and data["birthDate"] == "1980-01-01" and data["address"][0]["text"] == "Gate 1"
    assert data["identifier"][0]["system"] == "urn:oid:2.16.578.1.12.4.1.4.1"


@pytest.mark.parametrize(
    ("system", "uri"),
    [
        ("2.16.578.1.12.4.1.1.7280", "urn:oid:2.16.578.1.12.4.1.1.7280"),
        ("LN", "http://loinc.org"),
        ("2.16.840.1.113883.6.96", "http://snomed.info/sct"),
        ("HL70070", "http://terminology.hl7.org/CodeSystem/v2-0070"),
        ("urn:enjournal:local:Special Hospital", "urn:enjournal:local:Special%20Hospital"),
        ("XYZ", "urn:enjournal:code:XYZ"),
    ],
)
def test_system_uri(system: str, uri: str) -> None:
    assert system_uri(system) == uri


def test_codeable_without_anything_is_none() -> None:
    assert codeable(None) is None
