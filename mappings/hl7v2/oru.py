"""ORU^R01 (v2.3-v2.8; also the R30/R31/R32 unsolicited variants) -> Person, one Observation per OBX, and
per order a Report, a Requisition and its Specimens (:mod:`mappings.hl7v2.orders`).

* Grouping: OBX belong to the OBR before them (or, without an OBR, to the ORC before them, or to
  the patient); SPM and TQ1 segments belong to the OBR group they follow. Every PID starts a patient.
* Key: ``hl7v2|<sending facility>|observation|<filler order>|<OBX-3 code>|<OBX-4 sub-id>``. The
  filler order is OBR-3 (``id@namespace``), else OBR-2 (placer), else ORC-3/ORC-2, else MSH-10. A
  correction (OBX-11 ``C``) repeats the same order, code and sub-id and so the same key. A key that
  repeats inside one message gets ``#<n>`` and the flag ``DUPLICATE_KEY_IN_MESSAGE`` (so does a report).
* Code OBX-3 (CE/CWE): the primary coding, ``alt_codes`` from components 4-6 (and 10-12), ``code_text``
  from CWE-9 when it differs from the display.
* Values: see :mod:`mappings.hl7v2.values` (an ED value's bytes decoded once into the result's
  ``attachments``, its :class:`~engine.model.AttachmentRef` in ``value_attachment``, described by
  OBX-3.2 else the NTE after it; a DT value, or a TS/DTM of a date only, also as ``value_date``).
  Units OBX-6, reference range OBX-7, abnormal flags OBX-8 (repetitions joined by ``,``), performer
  OBX-23.1 / OBX-15.
* Parties of a result (:mod:`mappings.hl7v2.parties`): OBX-16 responsible observer, OBX-23 performing
  organisation and OBX-25 its medical director (performer).
* Comments: NTE after an OBX -> that result's ``comments``; after an OBR (or its ORC) before its first
  OBX -> the report's; after the PID -> the patient's first report (warning
  ``HL7_PATIENT_NOTE_WITHOUT_REPORT`` when there is none). A comment never joins a value.
* Status: the table in :mod:`mappings.hl7v2.status` (OBR-25 x OBX-11 x value present).
* Times: ``effective_time`` = OBX-14, else OBR-7 (``effective_date`` instead when the value is a date
  only). ``event_time`` (orders versions) = OBR-22 (result status change), else MSH-7, else OBX-14,
  else OBR-7: when the source issued this result, so a correction is newer than the original only
  when the source says so.
* Specimen: ``specimen`` OBR-15.1 (v2.3-2.6 SPS), else SPM-4 of the group; ``specimen_key`` its
  Specimen record, ``report_key`` / ``requisition_key`` the order's records.
* Person: the PID's demographics (:mod:`mappings.hl7v2.pid`) with the key ADT gives it, so a result
  message's copy is a version of the same Person (the current one is the latest by event time); the
  PID's identifiers are linked.
* Nothing is dropped silently: an OBX glued onto the segment before it (no segment separator before
  ``OBX|``, a sender defect) is ``ParseError`` ``HL7_SEGMENTS_GLUED`` naming the segment and field where
  it starts; a message that yields no result is ``ValidationError`` ``HL7_NO_RESULTS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.errors import ParseError, ValidationError
from engine.model import Attachment, Coding, Identifier, MappingResult, Observation, Party
from mappings.hl7v2 import orders, parties, tables, values
from mappings.hl7v2 import pid as pidmod
from mappings.hl7v2 import status as tables_status
from mappings.hl7v2.common import Source
from mappings.hl7v2.message import Segment
from mappings.hl7v2.obxtest import ObxTest, obx_test
from mappings.hl7v2.timeutil import first_time, time_or_date

EVENTS = frozenset({"R01", "R30", "R31", "R32"})
_UNKNOWN_CODE = Coding(code="UNKNOWN")


@dataclass
class Group:
    """One order's results: its OBR (or ORC), OBX and SPM segments, and the PID they are about."""

    pid: Segment
    obr: Segment | None
    orc: Segment | None
    obx: list[Segment] = field(default_factory=list)
    spm: list[Segment] = field(default_factory=list)
    tq1: Segment | None = None
    notes: list[str] = field(default_factory=list)  # NTE after the OBR, before its first OBX
    obx_notes: dict[int, list[str]] = field(default_factory=dict)  # NTE after an OBX, by its index in obx


#: an OBX holds at most 33 fields (v2.8); one with more than this many is checked for a glued OBX
_OBX_GLUE_CHECK = 20


def glued_obx_field(seg: Segment) -> int | None:
    """The field of ``seg`` where an OBX glued onto it starts (``...|FOBX|1|NM|...``: the field ending
    in ``OBX`` followed by a set id or nothing), or None."""
    f = seg.fields
    if "OBX" + seg.d.field not in seg.d.field.join(f[1:]):  # one C-level search: the usual answer
        return None
    for i in range(1, len(f) - 1):
        if f[i].endswith("OBX") and (f[i + 1].isdigit() or not f[i + 1]):
            return i
    return None


def _check_not_glued(seg: Segment, position: int) -> None:
    at = glued_obx_field(seg)
    if at is not None:
        raise ParseError(
            f"an OBX segment is glued onto segment {position} ({seg.id}) at {seg.id}-{at}: "
            "no segment separator before it",
            code="HL7_SEGMENTS_GLUED",
        )


def _note(nte: Segment) -> str:
    """NTE-3 (FT, repeating) as text, repetitions on their own lines."""
    return "\n".join(nte.text(3, r) for r in range(len(nte.reps(3))))


def groups(src: Source) -> tuple[list[Group], dict[int, list[str]]]:
    """Result groups in message order (see the module docstring) and the comments (NTE) after each
    PID before its first order, by ``id()`` of the PID; raises ``HL7_SEGMENTS_GLUED``."""
    out: list[Group] = []
    pid_notes: dict[int, list[str]] = {}
    pid = src.require("PID")
    orc: Segment | None = None
    group: Group | None = None
    orc_notes: list[str] = []
    for position, seg in enumerate(src.msg.segments, 1):
        sid = seg.id
        if sid != "OBX" or len(seg.fields) > _OBX_GLUE_CHECK:
            _check_not_glued(seg, position)
        if sid == "OBX":
            if group is None:
                group = Group(pid, None, orc, notes=orc_notes)
                out.append(group)
                orc_notes = []
            group.obx.append(seg)
        elif sid == "NTE":
            if group is not None and group.obx:
                group.obx_notes.setdefault(len(group.obx) - 1, []).append(_note(seg))
            elif group is not None:
                group.notes.append(_note(seg))
            elif orc is not None:
                orc_notes.append(_note(seg))
            else:
                pid_notes.setdefault(id(pid), []).append(_note(seg))
        elif sid == "OBR":
            group = Group(pid, seg, orc, notes=orc_notes)
            orc_notes = []
            out.append(group)
        elif sid == "ORC":
            orc, group = seg, None
        elif sid == "SPM" and group is not None:
            group.spm.append(seg)
        elif sid == "TQ1" and group is not None:
            group.tq1 = seg
        elif sid == "PID":
            pid, orc, group = seg, None, None
    return out, pid_notes


def filler(g: Group, src: Source) -> str:
    for seg in (g.obr, g.orc):
        if seg is not None:
            found = orders.ei(seg, 3) or orders.ei(seg, 2)
            if found:
                return found
    return src.control_id


def _specimen(g: Group) -> Coding | None:
    if g.obr is not None and g.obr.raw(15):
        code, name = g.obr.get(15), g.obr.get(15, 1, 2)
        if code or name:
            return tables.coding(code, name, g.obr.get(15, 1, 3))
    for spm in g.spm:
        found = tables.coding_from_parts(spm.parts(4))
        if found is not None:
            return found
    return None


@dataclass
class _Order:
    """Per-group facts shared by its OBX: computed once."""

    filler: str
    specimen: Coding | None
    obr7: str
    obr25: str  # OBR-25 as written (the status table's order column)
    issued: datetime | None  # OBR-22, else MSH-7
    facts: orders.OrderFacts


def _unique(key: str, seen: dict[str, int]) -> tuple[str, tuple[str, ...]]:
    """``key``, or ``key#<n>`` with the flag ``DUPLICATE_KEY_IN_MESSAGE`` when it repeats in the message."""
    n = seen.get(key, 0) + 1
    seen[key] = n
    return (key, ()) if n == 1 else (f"{key}#{n}", ("DUPLICATE_KEY_IN_MESSAGE",))


def _facts(
    g: Group,
    src: Source,
    fill: str,
    times: tuple[str, datetime | None, datetime | None],
    subject: Identifier,
    seen: dict[str, int],
) -> orders.OrderFacts:
    """``times``: OBR-7 as written, OBR-22, and the issued time (OBR-22, else MSH-7)."""
    obr, orc = g.obr, g.orc
    obr7, obr22, issued = times
    event_time = issued or first_time(obr7)
    flags = src.flags
    if event_time is None:
        event_time, flags = src.ctx.received_at, (*flags, "EVENT_TIME_FROM_RECEIPT")
    report_key = requisition_key = None
    if obr is not None:  # an OBR that repeats a filler order of the message gets keys of its own
        report_key, dup = _unique(src.key("report", fill), seen)
        requisition_key = src.key("requisition", fill) + report_key[len(src.key("report", fill)) :]
        flags = (*flags, *dup)
    elif g.orc is not None:  # results right after an ORC: the order's requisition (an OBR of it may follow)
        requisition_key = src.key("requisition", fill)
    if g.spm:
        spm_keys = tuple(orders.specimen_key(spm, fill, n, src) for n, spm in enumerate(g.spm, 1))
    else:
        spm_keys = (src.key("specimen", fill),) if orders.has_obr_specimen(obr) else ()
    return orders.OrderFacts(
        subject=subject,
        event_time=event_time,
        flags=flags,
        report_key=report_key,
        requisition_key=requisition_key,
        specimen_keys=spm_keys,
        requesters=orders.requesters(obr, orc, src.facility),
        sender=_sender(src),
        placer_id=orders.ei(orc, 2) or orders.ei(obr, 2),
        filler_id=orders.ei(orc, 3) or orders.ei(obr, 3),
        report_id=orders.ei(obr, 3) or orders.ei(orc, 3),
        obr25=obr.get(25) if obr is not None else "",
        obr7=obr7,
        obr22=obr22,
    )


def _sender(src: Source) -> list[Party]:
    found = parties.hd(src.msh.raw(4), src.msh.d, "sender") if src.msh.raw(4) else None
    return [found] if found is not None else []


def _order(g: Group, src: Source, subject: Identifier, seen: dict[str, int]) -> _Order:
    obr = g.obr
    fill = filler(g, src)
    if obr is None:
        issued = first_time(src.msh.get(7))
        return _Order(fill, _specimen(g), "", "", issued, _facts(g, src, fill, ("", None, issued), subject, seen))
    obr7, obr22 = obr.get(7), first_time(obr.get(22))
    issued = obr22 or first_time(src.msh.get(7))
    facts = _facts(g, src, fill, (obr7, obr22, issued), subject, seen)
    return _Order(fill, _specimen(g), obr7, facts.obr25, issued, facts)


def _abnormal(obx: Segment) -> str | None:
    if not obx.raw(8):
        return None
    return ",".join(x for x in (obx.get(8, rep=r) for r in range(len(obx.reps(8)))) if x) or None


def _performer(obx: Segment) -> str | None:
    if obx.raw(23):
        return obx.get(23) or None
    if obx.raw(15):
        return obx.get(15, 2) or obx.get(15) or None
    return None


def _result_parties(obx: Segment, facility: str) -> tuple[Party, ...] | None:
    """OBX-16 responsible observer, OBX-23 performing organisation, OBX-25 its medical director."""
    f = obx.fields
    if not (f[16] or (len(f) > 23 and f[23]) or (len(f) > 25 and f[25])):
        return None
    org = obx.get(23) or None
    found = [*parties.of(obx, 16, "xcn", "responsible", facility), *parties.of(obx, 23, "xon", "performer", facility)]
    for rep in obx.reps(25):
        director = parties.xcn(rep, obx.d, "performer", facility, org)
        if director is not None:
            found.append(director)
    return parties.unique(found)


def _values(obx: Segment, test: ObxTest, notes: list[str] | None) -> tuple[dict[str, Any], list[Attachment]]:
    """The value fields of ``obx`` and the attachment its ED value holds (its bytes decoded once)."""
    value = values.obx_value(obx, test.value_type)
    if "attachment" not in value:
        return value, []
    attachment = value.pop("attachment")
    description = (test.code.display if test.code is not None else None) or (notes[0] if notes else None)
    value["value_attachment"] = attachment.ref(description=description)
    return value, [attachment]


def observation(
    obx: Segment,
    test: ObxTest,
    key: str,
    order: _Order,
    src: Source,
    flags: tuple[str, ...],
    notes: list[str] | None = None,
    attachments: list[Attachment] | None = None,
) -> Observation:
    """One Observation version for ``obx`` (``test``: its :func:`~mappings.hl7v2.obxtest.obx_test`);
    the bytes of an ED value go to ``attachments``."""
    value, found = _values(obx, test, notes)
    if found and attachments is not None:
        attachments.extend(found)
    effective, effective_date = time_or_date(obx.get(14), order.obr7)
    event_time = order.issued or effective or (first_time(order.obr7) if effective_date else None)
    if event_time is None:
        event_time, flags = src.ctx.received_at, (*flags, "EVENT_TIME_FROM_RECEIPT")
    status, sflags = tables_status.result_status(order.obr25, test.status_code, bool(value))
    if sflags:
        flags = (*flags, *sflags)
    if "flags" in value:
        flags = (*flags, *value.pop("flags"))
    facts = order.facts
    fields = {
        "key": key,
        "subject": facts.subject,
        "event_time": event_time,
        "status": status,
        "provenance": src.prov,
        "flags": flags,
        "code": test.code or _UNKNOWN_CODE,
        "value_type": test.value_type or None,
        "unit": test.unit,
        "abnormal_flag": _abnormal(obx),
        "effective_time": effective,
        "specimen": order.specimen,
        "report_id": order.filler,
        "performer": _performer(obx),
        **facts.result_links,
        **test.extra,
        **test.reference,
        **value,
    }
    if effective_date is not None:
        fields["effective_date"] = effective_date
    if notes:
        fields["comments"] = tuple(notes)
    if len(obx.fields) > 16:
        named = _result_parties(obx, src.facility)
        if named is not None:
            fields["parties"] = named
    # model_validate(dict) builds the same model as Observation(**kwargs) more cheaply (once per OBX)
    return Observation.model_validate(fields)


def _obx_key(
    obx: Segment, test: ObxTest, order: _Order, src: Source, seen: dict[str, int]
) -> tuple[str, tuple[str, ...]]:
    code = test.code_key or ("#" + set_id if (set_id := obx.get(1)) else "")
    return _unique(src.key("observation", order.filler, code, obx.get(4)), seen)


class _OrderRecords:
    """Reports in message order; one Requisition per key (an OBR's wins over its ORC's alone) and one
    Specimen per key (a sample shared by several orders is written once)."""

    def __init__(self) -> None:
        self.reports: list[Any] = []
        self.requisitions: dict[str, tuple[bool, Any]] = {}
        self.specimens: dict[str, Any] = {}

    def add(self, g: Group, order: _Order, keys: list[str], notes: list[str], src: Source) -> None:
        facts, obr = order.facts, g.obr
        if obr is not None:
            self.reports.append(orders.report(obr, g.orc, facts, keys, notes, src))
        rkey = facts.requisition_key
        if rkey is not None and (rkey not in self.requisitions or (obr is not None and not self.requisitions[rkey][0])):
            self.requisitions[rkey] = (obr is not None, orders.requisition(obr, g.orc, g.tq1, facts, src))
        for n, key in enumerate(facts.specimen_keys):
            if key not in self.specimens:
                if g.spm:
                    self.specimens[key] = orders.spm_specimen(g.spm[n], key, facts, src)
                elif obr is not None:
                    self.specimens[key] = orders.obr_specimen(obr, key, order.specimen, facts, src)

    def records(self) -> list[Any]:
        return [*self.reports, *(r for _, r in self.requisitions.values()), *self.specimens.values()]


def _person(pid: Segment, pat: pidmod.Patient, src: Source) -> list[Any]:
    return [pidmod.person(pid, pat, src)] if pidmod.has_demographics(pid) else []


def map_oru(src: Source) -> MappingResult:
    """Person, Observations, Reports, Requisitions and Specimens of an ORU message."""
    records: list[Any] = []
    attachments: list[Attachment] = []
    patients: dict[int, pidmod.Patient] = {}
    seen: dict[str, int] = {}
    order_seen: dict[str, int] = {}
    order_records = _OrderRecords()
    found, pid_notes = groups(src)
    for g in found:
        pat = patients.get(id(g.pid))
        if pat is None:
            pat = patients[id(g.pid)] = pidmod.patient(g.pid, src)
            records += _person(g.pid, pat, src)
        order = _order(g, src, pat.subject, order_seen)
        keys: list[str] = []
        for n, obx in enumerate(g.obx):
            test = obx_test(obx)
            key, kflags = _obx_key(obx, test, order, src, seen)
            keys.append(key)
            records.append(observation(obx, test, key, order, src, kflags, g.obx_notes.get(n), attachments))
        notes = g.notes
        if id(g.pid) in pid_notes and g.obr is not None:  # the patient's comments go on its first report
            notes = [*pid_notes.pop(id(g.pid)), *notes]
        order_records.add(g, order, keys, notes, src)
    if not any(isinstance(r, Observation) for r in records):
        raise ValidationError("the result message holds no OBX result", code="HL7_NO_RESULTS")
    records += order_records.records()
    pats = list(patients.values())
    links = pats[0].links if len(pats) == 1 else tuple(dict.fromkeys(lnk for p in pats for lnk in p.links))
    warnings = dict.fromkeys(w for p in pats for w in p.warnings)
    if pid_notes:  # a patient's comments with no report to carry them
        warnings["HL7_PATIENT_NOTE_WITHOUT_REPORT"] = None
    return MappingResult(
        records=tuple(records),
        links=links,
        attachments=tuple(dict.fromkeys(attachments)) if attachments else (),
        warnings=tuple(warnings),
        message_type=f"ORU^{src.event}",
        source_message_id=src.control_id,
    )
