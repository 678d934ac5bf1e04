"""ADT A01/A02/A03/A04/A05/A08/A11/A13/A28/A31 (v2.3-v2.8) -> Person + Encounter.

* Person: from PID (see :mod:`mappings.hl7v2.pid`); identifiers of the PID are linked
  (``same-message``).
* Encounter: when PV1 is present with a patient class other than ``N`` (A28/A31 only when PV1-19
  names a visit). Key ``hl7v2|<sending facility>|encounter|<PV1-19.1>``; without a visit number the
  admit time PV1-44 and the subject's hash, else MSH-10 (flag ``KEY_FROM_MESSAGE_ID``).
  Class PV1-2, location PV1-3 (point of care/room/bed), facility PV1-3.4 else MSH-4, admission type
  PV1-4, discharge disposition PV1-36, hospital service PV1-10, admit source PV1-14, start PV1-44, end
  PV1-45 (A03: else EVN-6, else event time). Parties: the visit's doctors (:mod:`mappings.hl7v2.visit`).
* Person extras: PID-13/14 telecom, PID-15 language, PID-16 marital status, NK1 contacts
  (:mod:`mappings.hl7v2.contacts`). OBX -> Observations (:mod:`mappings.hl7v2.visit`), DG1 ->
  Conditions (:mod:`mappings.hl7v2.diagnoses`), AL1 -> Allergies (:mod:`mappings.hl7v2.allergies`), PR1 ->
  Procedures (:mod:`mappings.hl7v2.procedures`).
* Status per event: A05 pre-admit -> preliminary; A11 cancel admit -> cancelled; A13 cancel discharge
  -> final with the end cleared (flag ``DISCHARGE_CANCELLED``); others final.
* Event time: EVN-2, else EVN-6, else MSH-7.
"""

from __future__ import annotations

from typing import Any

from engine.model import Encounter, MappingResult, RecordStatus
from mappings.hl7v2 import allergies, contacts, diagnoses, procedures, tables, visit
from mappings.hl7v2 import pid as pidmod
from mappings.hl7v2.common import Source, digest
from mappings.hl7v2.message import Segment
from mappings.hl7v2.timeutil import first_time, parse_dtm

EVENTS = frozenset({"A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A11", "A13", "A28", "A31"})
_PERSON_ONLY = frozenset({"A28", "A31"})


#: the segments an ADT message's clinical content is collected from, besides its first PV1
_COLLECTED = ("OBX", "ROL", "DG1", "NK1", "AL1", "PR1")


def map_adt(src: Source) -> MappingResult:
    """Person (+ Encounter) for one ADT message."""
    pid = src.require("PID")
    pat = pidmod.patient(pid, src)
    person = pidmod.person(pid, pat, src)
    pv1: Segment | None = None
    found: dict[str, list[Segment]] = {sid: [] for sid in _COLLECTED}
    for seg in src.msg.segments:  # one pass: segments that are absent cost nothing more
        group = found.get(seg.id)
        if group is not None:
            group.append(seg)
        elif seg.id == "PV1" and pv1 is None:
            pv1 = seg
    obxs, rols, dg1s, nk1s, al1s, pr1s = (found[sid] for sid in _COLLECTED)
    extra = pidmod.contact_details(pid)
    kin = contacts.contacts(nk1s) if nk1s else None
    if extra or kin:
        person = person.model_copy(update={**extra, "contacts": kin} if kin else extra)
    records: list[Any] = [person]
    warnings = list(pat.warnings)
    visit_no = pv1.get(19) if pv1 is not None else ""
    encounter_key: str | None = None
    if pv1 is not None and _wants_encounter(pv1, src.event):
        enc = encounter(pv1, pat.subject, src, rols)
        encounter_key = enc.key
        records.append(enc)
    if obxs:
        records.extend(visit.observations(obxs, pat.subject, visit_no, src))
    if dg1s:
        records.extend(diagnoses.conditions(dg1s, pat.subject, visit_no, encounter_key, src))
    if al1s:
        records.extend(allergies.allergies(al1s, pat.subject, src))
    if pr1s:
        records.extend(procedures.procedures(pr1s, pat.subject, visit_no, encounter_key, src))
    return MappingResult(
        records=tuple(records),
        links=pat.links,
        warnings=tuple(dict.fromkeys(warnings)),
        message_type=f"ADT^{src.event}",
        source_message_id=src.control_id,
    )


def _wants_encounter(pv1: Segment, event: str) -> bool:
    if tables.patient_class(pv1.get(2)) is None:
        return False
    return event not in _PERSON_ONLY or bool(pv1.get(19))


def _key(pv1: Segment, subject: Any, src: Source) -> tuple[str, tuple[str, ...]]:
    visit = pv1.get(19)
    if visit:
        return src.key("encounter", visit), ()
    admit = pv1.get(44)
    if parse_dtm(admit) is not None:
        return src.key("encounter", digest(subject), admit), ("KEY_FROM_ADMIT_TIME",)
    return src.key("encounter", "msg", src.control_id), ("KEY_FROM_MESSAGE_ID",)


def _location(pv1: Segment) -> str | None:
    """Point of care/room/bed (PV1-3.1-3)."""
    return "/".join([p for p in pv1.comps(3)[:3] if p]) or None


def _status_and_end(pv1: Segment, src: Source) -> tuple[RecordStatus, Any, tuple[str, ...]]:
    end = parse_dtm(pv1.get(45))
    ev = src.event
    if ev == "A11":
        return RecordStatus.CANCELLED, end, ()
    if ev == "A13":
        return RecordStatus.FINAL, None, ("DISCHARGE_CANCELLED",)
    if ev == "A05":
        return RecordStatus.PRELIMINARY, end, ()
    if ev == "A03" and end is None:
        evn = src.msg.segment("EVN")
        end = first_time(evn.get(6) if evn else "") or src.event_time
    return RecordStatus.FINAL, end, ()


def encounter(pv1: Segment, subject: Any, src: Source, rols: list[Segment] | None = None) -> Encounter:
    """The Encounter version PV1 states for this event (see the module docstring)."""
    key, key_flags = _key(pv1, subject, src)
    status, end, flags = _status_and_end(pv1, src)
    fields: dict[str, Any] = {
        "key": key,
        "subject": subject,
        "event_time": src.event_time,
        "status": status,
        "provenance": src.prov,
        "flags": (*src.flags, *key_flags, *flags),
        "encounter_class": tables.patient_class(pv1.get(2)),
        "start": parse_dtm(pv1.get(44)),
        "end": end,
        "facility": pv1.get(3, 4) or src.facility,
        "location": _location(pv1),
        "admission_type": pv1.get(4) or None,
        "discharge_disposition": pv1.get(36) or None,
    }
    if len(pv1.fields) > 10:
        service, source = pv1.get(10), pv1.get(14)
        if service:
            fields["hospital_service"] = service
        if source:
            fields["admit_source"] = source
    named = visit.encounter_parties(pv1, rols or [], src.facility)
    if named is not None:
        fields["parties"] = named
    # the same model as Encounter(**kwargs), validated more cheaply (once per record on the hot path)
    return Encounter.model_validate(fields)
