"""Canonical records -> FHIR R4 resources (JSON-ready dicts): pure functions, one per record kind.

:func:`resource` renders one current record version; ``subject`` is the FHIR reference of the citizen it is
about (``Patient/<id>``: the read side decides the citizen's id). Practitioners and organisations named on
records become :func:`party` resources, referred to by :func:`engine.fhir.refs.party_ref`. Attachments are
served as ``Binary/<sha256>``. What each kind becomes:

=============  ======================  ==========================================================
kind           resource                notes
=============  ======================  ==========================================================
observation    Observation             codings + text, value[x], ranges, interpretation, notes
report         DiagnosticReport        results, specimens, performer, interpreter, presentedForm
requisition    ServiceRequest          placer/filler ids, priority, reasons, requester
referral       ServiceRequest          category referral
specimen       Specimen                accession id, type, collected, body site, received
condition      Condition               encounter diagnosis, onset
document       DocumentReference       text inline, attachments by Binary reference
encounter      Encounter               class from the v3 ActCode table
medication     MedicationStatement     ATC coding, dosage text
care_event     Basic                   a municipal care event (admitted, discharged ...)
=============  ======================  ==========================================================

A cancelled record is ``entered-in-error`` (or ``revoked`` / ``cancelled`` where the resource has that
status): the journal keeps it visible as retracted rather than hiding it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from engine.fhir.codes import codeable, system_uri
from engine.fhir.refs import party_id, party_ref, record_id, record_ref
from engine.model import (
    Allergy,
    AttachmentRef,
    CareEvent,
    Condition,
    Document,
    Encounter,
    Medication,
    Observation,
    Party,
    PartyId,
    Procedure,
    RecordBase,
    RecordStatus,
    Referral,
    Report,
    Requisition,
    Specimen,
)

__all__ = ["party", "resource"]

_Json = dict[str, Any]
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
#: roles whose party performed the service (FHIR ``performer``) and who interpreted it
_PERFORMER_ROLES = frozenset({"performer", "approver", "screener"})
_INTERPRETER_ROLES = frozenset({"responsible"})
#: HL7 v2 abnormal flags (table 0078) that are also v3 ObservationInterpretation codes
_FLAGS = frozenset({"L", "H", "LL", "HH", "N", "A", "AA", "<", ">", "U", "D", "B", "W", "S", "R", "I", "NEG", "POS"})
_OBS_STATUS = {
    RecordStatus.FINAL: "final",
    RecordStatus.PRELIMINARY: "preliminary",
    RecordStatus.CORRECTED: "corrected",
    RecordStatus.CANCELLED: "entered-in-error",
}
_REPORT_STATUS = {**_OBS_STATUS, RecordStatus.CANCELLED: "cancelled"}
_REQUEST_STATUS = {
    RecordStatus.FINAL: "completed",
    RecordStatus.CORRECTED: "completed",
    RecordStatus.PRELIMINARY: "active",
    RecordStatus.CANCELLED: "revoked",
}
_ENCOUNTER_CLASS = {
    "inpatient": ("IMP", "inpatient encounter"),
    "outpatient": ("AMB", "ambulatory"),
    "emergency": ("EMER", "emergency"),
    "home": ("HH", "home health"),
    "virtual": ("VR", "virtual"),
}


def _when(at: datetime | None, day: date | None = None) -> str | None:
    if at is not None:
        return at.isoformat()
    return day.isoformat() if day is not None else None


def _identifier(pid: PartyId) -> _Json:
    return {"system": system_uri(pid.system), "value": pid.value}


def _notes(rec: RecordBase) -> list[_Json]:
    return [{"text": text} for text in rec.comments or ()]


def _parties(rec: RecordBase, roles: frozenset[str]) -> list[_Json]:
    return [party_ref(p) for p in rec.parties or () if p.role in roles]


def _first_party(rec: RecordBase, role: str) -> _Json | None:
    found = _parties(rec, frozenset({role}))
    return found[0] if found else None


def _attachment(att: AttachmentRef) -> _Json:
    out: _Json = {"contentType": att.content_type}
    if att.size:
        out["url"] = f"Binary/{att.sha256}"
        out["size"] = att.size
    title = att.title or att.description
    if title:
        out["title"] = title
    return out


def _base(rtype: str, rec: RecordBase, subject: str) -> _Json:
    return {"resourceType": rtype, "id": record_id(rec.key), "subject": {"reference": subject}}


def _drop_empty(res: _Json) -> _Json:
    """FHIR forbids empty arrays and objects: leave such elements out."""
    return {k: v for k, v in res.items() if v not in (None, [], {}, "")}


def _quantity(value: float, unit: str | None) -> _Json:
    out: _Json = {"value": value}
    if unit:
        out["unit"] = unit
    return out


def _reference_range(o: Observation) -> list[_Json]:
    if o.ref_low is None and o.ref_high is None and not o.reference_range:
        return []
    rng: _Json = {}
    if o.ref_low is not None:
        rng["low"] = _quantity(o.ref_low, o.unit)
    if o.ref_high is not None:
        rng["high"] = _quantity(o.ref_high, o.unit)
    if o.reference_range:
        rng["text"] = o.reference_range
    return [rng]


def _value(o: Observation) -> _Json:
    if o.value_num is not None:
        q = _quantity(o.value_num, o.unit)
        if o.comparator:
            q["comparator"] = o.comparator
        return {"valueQuantity": q}
    if o.value_code is not None:
        cc = codeable(o.value_code)
        if cc:
            return {"valueCodeableConcept": cc}
    if o.value_date is not None:
        return {"valueDateTime": o.value_date.isoformat()}
    if o.value_text:
        return {"valueString": o.value_text}
    if o.value_attachment is not None:
        return {"valueString": o.value_attachment.description or o.value_attachment.content_type}
    return {}


def _interpretation(flag: str | None) -> list[_Json]:
    out: list[_Json] = []
    for part in (flag or "").split(","):
        code = part.strip().upper()
        if code in _FLAGS:
            out.append({"coding": [{"system": _INTERPRETATION, "code": code}]})
        elif code:
            out.append({"text": part.strip()})
    return out


def observation(o: Observation, subject: str) -> _Json:
    res = _base("Observation", o, subject)
    res.update(
        status=_OBS_STATUS[o.status],
        code=codeable(o.code, o.alt_codes, o.code_text) or {"text": "unknown"},
        effectiveDateTime=_when(o.effective_time, o.effective_date),
        issued=(o.issued or o.event_time).isoformat(),
        performer=_parties(o, _PERFORMER_ROLES | _INTERPRETER_ROLES),
        interpretation=_interpretation(o.abnormal_flag),
        referenceRange=_reference_range(o),
        note=_notes(o),
        specimen={"reference": record_ref("specimen", o.specimen_key)} if o.specimen_key else None,
        basedOn=[{"reference": record_ref("requisition", o.requisition_key)}] if o.requisition_key else [],
        derivedFrom=[{"reference": record_ref("observation", k)} for k in o.derived_from or ()],
        **_value(o),
    )
    if o.value_attachment is not None:
        res["derivedFrom"] = [*res["derivedFrom"], {"reference": f"Binary/{o.value_attachment.sha256}"}]
    return _drop_empty(res)


def report(r: Report, subject: str) -> _Json:
    res = _base("DiagnosticReport", r, subject)
    res.update(
        status=_REPORT_STATUS[r.status],
        code=codeable(r.code, r.alt_codes, r.code_text) or {"text": r.category or "report"},
        category=[{"text": r.category}] if r.category else [],
        identifier=[{"value": r.report_id}] if r.report_id else [],
        effectiveDateTime=_when(r.effective_time, r.effective_date),
        issued=(r.issued or r.event_time).isoformat(),
        performer=_parties(r, _PERFORMER_ROLES),
        resultsInterpreter=_parties(r, _INTERPRETER_ROLES),
        result=[{"reference": record_ref("observation", k)} for k in r.result_keys or ()],
        specimen=[{"reference": record_ref("specimen", k)} for k in r.specimen_keys or ()],
        basedOn=[{"reference": record_ref("requisition", r.requisition_key)}] if r.requisition_key else [],
        conclusion=r.conclusion,
        conclusionCode=[cc for c in r.conclusion_codes or () if (cc := codeable(c))],
        presentedForm=[_attachment(a) for a in r.attachments or ()],
    )
    if r.comments:
        res["conclusion"] = "\n".join(x for x in (r.conclusion, *r.comments) if x)
    return _drop_empty(res)


def _request_ids(placer: str | None, filler: str | None) -> list[_Json]:
    out = []
    for code, value in (("PLAC", placer), ("FILL", filler)):
        if value:
            out.append({"type": {"coding": [{"system": _IDENTIFIER_TYPE, "code": code}]}, "value": value})
    return out


def requisition(q: Requisition, subject: str) -> _Json:
    codes = q.codes or ()
    res = _base("ServiceRequest", q, subject)
    res.update(
        status=_REQUEST_STATUS[q.status],
        intent="order",
        identifier=_request_ids(q.placer_id, q.filler_id),
        code=codeable(codes[0] if codes else None, codes[1:], q.code_text),
        priority=q.priority,
        authoredOn=_when(q.requested_at),
        requester=_first_party(q, "requester"),
        performer=_parties(q, _PERFORMER_ROLES),
        reasonCode=[cc for cc in (*(codeable(c) for c in q.reason_codes or ()), codeable(None, text=q.reason)) if cc],
        note=_notes(q),
    )
    return _drop_empty(res)


def referral(r: Referral, subject: str) -> _Json:
    res = _base("ServiceRequest", r, subject)
    res.update(
        status=_REQUEST_STATUS[r.status],
        intent="order",
        category=[{"text": "referral"}],
        code=codeable(r.service),
        priority=r.priority if r.priority in ("routine", "urgent", "asap", "stat") else None,
        authoredOn=r.event_time.isoformat(),
        requester=_first_party(r, "requester") or ({"display": r.requester} if r.requester else None),
        performer=[{"display": r.recipient}] if r.recipient else _parties(r, frozenset({"recipient"})),
        reasonCode=[cc for cc in (*(codeable(c) for c in r.codes), codeable(None, text=r.reason)) if cc],
        note=_notes(r),
    )
    return _drop_empty(res)


def specimen(s: Specimen, subject: str) -> _Json:
    collection = _drop_empty(
        {
            "collectedDateTime": _when(s.collected_at, s.collected_date),
            "bodySite": codeable(s.body_site, text=s.body_site_text),
        }
    )
    res = _base("Specimen", s, subject)
    res.update(
        status="entered-in-error" if s.status is RecordStatus.CANCELLED else "available",
        accessionIdentifier={"value": s.sample_id} if s.sample_id else None,
        type=codeable(s.specimen_type),
        receivedTime=_when(s.received_at),
        collection=collection,
        note=_notes(s),
    )
    return _drop_empty(res)


def condition(c: Condition, subject: str) -> _Json:
    cancelled = c.status is RecordStatus.CANCELLED
    res = _base("Condition", c, subject)
    res.update(
        verificationStatus={
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "entered-in-error"
                    if cancelled
                    else ("provisional" if c.status is RecordStatus.PRELIMINARY else "confirmed"),
                }
            ]
        },
        category=[
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                    }
                ]
            }
        ],
        code=codeable(c.code, c.alt_codes, c.text),
        onsetDateTime=_when(c.onset, c.onset_date),
        recordedDate=c.event_time.isoformat(),
        encounter={"reference": record_ref("encounter", c.encounter_key)} if c.encounter_key else None,
        note=_notes(c),
    )
    return _drop_empty(res)


def document(d: Document, subject: str) -> _Json:
    content = [{"attachment": _attachment(a)} for a in d.attachments]
    if d.text:
        text = {"contentType": d.mime_type or "text/plain", "title": d.title or d.topic}
        content.insert(0, {"attachment": _drop_empty({**text, "data": _b64(d.text)})})
    res = _base("DocumentReference", d, subject)
    res.update(
        status="entered-in-error" if d.status is RecordStatus.CANCELLED else "current",
        docStatus={RecordStatus.PRELIMINARY: "preliminary", RecordStatus.CORRECTED: "amended"}.get(d.status, "final"),
        type=codeable(d.doc_type),
        category=[cc for cc in (codeable(None, d.topic_codes, d.topic),) if cc],
        date=(d.event_time).isoformat(),
        author=_parties(d, frozenset({"author"})) or ([{"display": d.author}] if d.author else []),
        custodian=_first_party(d, "sender"),
        description=d.title,
        content=content or [{"attachment": {"contentType": d.mime_type or "text/plain"}}],
    )
    return _drop_empty(res)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def encounter(e: Encounter, subject: str) -> _Json:
    code, display = _ENCOUNTER_CLASS.get((e.encounter_class or "").lower(), ("AMB", "ambulatory"))
    res = _base("Encounter", e, subject)
    status = "cancelled" if e.status is RecordStatus.CANCELLED else ("finished" if e.end else "in-progress")
    res.update(
        status=status,
        **{"class": {"system": _ACT_CODE, "code": code, "display": display}},
        period=_drop_empty({"start": _when(e.start), "end": _when(e.end)}),
        serviceProvider=_first_party(e, "performer") or ({"display": e.facility} if e.facility else None),
        location=[{"location": {"display": e.location}}] if e.location else [],
        serviceType={"text": e.hospital_service} if e.hospital_service else None,
        hospitalization={"admitSource": {"text": e.admit_source}} if e.admit_source else None,
        participant=[
            {"type": [{"text": p.role}], "individual": party_ref(p)}
            for p in e.parties or ()
            if p.kind == "practitioner"
        ],
    )
    return _drop_empty(res)


def medication(m: Medication, subject: str) -> _Json:
    res = _base("MedicationStatement", m, subject)
    cancelled = m.status is RecordStatus.CANCELLED
    res.update(
        status="entered-in-error" if cancelled else ("completed" if m.end else "active"),
        medicationCodeableConcept=codeable(m.code, text=m.name) or {"text": "unknown"},
        effectivePeriod=_drop_empty({"start": _when(m.start), "end": _when(m.end)}),
        dateAsserted=m.event_time.isoformat(),
        dosage=[{"text": m.dosage}] if m.dosage else [],
        note=_notes(m),
    )
    return _drop_empty(res)


def care_event(c: CareEvent, subject: str) -> _Json:
    res = _base("Basic", c, subject)
    res.update(
        code=codeable(c.event_code, text=c.description) or {"text": "care event"},
        created=(c.occurred_at or c.event_time).date().isoformat(),
    )
    return _drop_empty(res)


def allergy(a: Allergy, subject: str) -> _Json:
    cancelled = a.status is RecordStatus.CANCELLED
    res = _base("AllergyIntolerance", a, subject)
    res["patient"] = res.pop("subject")
    res.update(
        clinicalStatus=None
        if cancelled
        else {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
            ]
        },
        verificationStatus={
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": "entered-in-error" if cancelled else "confirmed",
                }
            ]
        },
        category=[a.category] if a.category else [],
        code=codeable(a.code),
        onsetDateTime=_when(a.identified, a.identified_date),
        recordedDate=a.event_time.isoformat(),
        reaction=[_drop_empty({"manifestation": [{"text": a.reaction}], "severity": a.severity})] if a.reaction else [],
        note=_notes(a),
    )
    return _drop_empty(res)


def procedure(p: Procedure, subject: str) -> _Json:
    res = _base("Procedure", p, subject)
    res.update(
        status="entered-in-error" if p.status is RecordStatus.CANCELLED else "completed",
        code=codeable(p.code, p.alt_codes, p.text),
        performedDateTime=_when(p.performed, p.performed_date),
        encounter={"reference": record_ref("encounter", p.encounter_key)} if p.encounter_key else None,
        performer=[{"actor": party_ref(x)} for x in p.parties or () if x.kind == "practitioner"],
        note=_notes(p),
    )
    return _drop_empty(res)


_RENDER: dict[type[RecordBase], Callable[[Any, str], _Json]] = {
    Observation: observation,
    Report: report,
    Requisition: requisition,
    Referral: referral,
    Specimen: specimen,
    Condition: condition,
    Document: document,
    Encounter: encounter,
    Medication: medication,
    CareEvent: care_event,
    Allergy: allergy,
    Procedure: procedure,
}


def resource(rec: RecordBase, subject: str) -> _Json:
    """The FHIR resource of a clinical record (a Person is rendered by :func:`engine.fhir.patient.patient`)."""
    render = _RENDER.get(type(rec))
    if render is None:
        raise TypeError(f"no FHIR rendering for record kind {rec.kind}")
    return render(rec, subject)


_TELECOM_SYSTEMS = {"tel": "phone", "fax": "fax", "mailto": "email"}


def _contact(value: str) -> _Json:
    """A FHIR ContactPoint of a KITH ``TeleAddress`` (``tel:``, ``fax:``, ``mailto:``; else ``other``)."""
    scheme, _, rest = value.partition(":")
    system = _TELECOM_SYSTEMS.get(scheme.lower())
    return {"system": system, "value": rest} if system and rest else {"system": "other", "value": value}


def party(p: Party) -> _Json:
    """The Practitioner or Organization resource of a party."""
    if p.kind == "practitioner":
        res: _Json = {"resourceType": "Practitioner", "id": party_id(p)}
        res["identifier"] = [_identifier(i) for i in p.ids]
        res["name"] = [{"text": p.name}] if p.name else []
        res["telecom"] = [_contact(t) for t in p.telecom or ()]
        qualification = codeable(p.qualification)
        res["qualification"] = [{"code": qualification}] if qualification else []
        return _drop_empty(res)
    res = {"resourceType": "Organization", "id": party_id(p)}
    res["identifier"] = [_identifier(i) for i in p.ids]
    res["name"] = p.name
    res["telecom"] = [_contact(t) for t in p.telecom or ()]
    res["address"] = [{"text": p.address}] if p.address else []
    return _drop_empty(res)
