"""ORU^R01 (v2.3-v2.8; also the R30/R31/R32 unsolicited variants) -> Observations, one per OBX.

* Grouping: OBX belong to the OBR before them (or, without an OBR, to the ORC before them, or to
  the patient); SPM segments belong to the OBR group they follow. Every PID starts a patient.
* Key: ``hl7v2|<sending facility>|observation|<filler order>|<OBX-3 code>|<OBX-4 sub-id>``. The
  filler order is OBR-3 (``id@namespace``), else OBR-2 (placer), else ORC-3/ORC-2, else MSH-10. A
  correction (OBX-11 ``C``) repeats the same order, code and sub-id and so the same key. A key that
  repeats inside one message gets ``#<n>`` and the flag ``DUPLICATE_KEY_IN_MESSAGE``.
* Values: see :mod:`mappings.hl7v2.values`. Units OBX-6, reference range OBX-7, abnormal flags
  OBX-8 (repetitions joined by ``,``), performer OBX-23.1 / OBX-15.
* Status: OBX-11 (F final, C/A corrected, P/R/S/I/O preliminary, X/D/W/N cancelled), else OBR-25,
  else final with the flag ``STATUS_MISSING``.
* Times: ``effective_time`` = OBX-14, else OBR-7. ``event_time`` (orders versions) = OBR-22 (result
  status change), else MSH-7, else OBX-14, else OBR-7: when the source issued this result, so a
  correction is newer than the original only when the source says so.
* Specimen: OBR-15.1 (v2.3-2.6 SPS), else SPM-4 of the group.
* The PID's identifiers are linked; no Person version is written from a result message (lab systems
  hold copies of demographics, the ADT source is the authority).
* Nothing is dropped silently: an OBX glued onto the segment before it (no segment separator before
  ``OBX|``, a sender defect) is ``ParseError`` ``HL7_SEGMENTS_GLUED`` naming the segment and field where
  it starts; a message that yields no result is ``ValidationError`` ``HL7_NO_RESULTS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.errors import ParseError, ValidationError
from engine.model import Coding, Identifier, MappingResult, Observation, RecordStatus
from mappings.hl7v2 import pid as pidmod
from mappings.hl7v2 import tables, values
from mappings.hl7v2.common import Source
from mappings.hl7v2.message import Segment
from mappings.hl7v2.obxtest import ObxTest, obx_test
from mappings.hl7v2.timeutil import first_time

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


def groups(src: Source) -> list[Group]:
    """Result groups in message order (see the module docstring); raises ``HL7_SEGMENTS_GLUED``."""
    out: list[Group] = []
    pid = src.require("PID")
    orc: Segment | None = None
    group: Group | None = None
    for position, seg in enumerate(src.msg.segments, 1):
        sid = seg.id
        if sid != "OBX" or len(seg.fields) > _OBX_GLUE_CHECK:
            _check_not_glued(seg, position)
        if sid == "OBX":
            if group is None:
                group = Group(pid, None, orc)
                out.append(group)
            group.obx.append(seg)
        elif sid == "OBR":
            group = Group(pid, seg, orc)
            out.append(group)
        elif sid == "ORC":
            orc, group = seg, None
        elif sid == "SPM" and group is not None:
            group.spm.append(seg)
        elif sid == "PID":
            pid, orc, group = seg, None, None
    return out


def _ei(seg: Segment, f: int) -> str:
    ident, ns = seg.get(f), seg.get(f, 2)
    return f"{ident}@{ns}" if ident and ns else ident


def filler(g: Group, src: Source) -> str:
    for seg in (g.obr, g.orc):
        if seg is not None:
            found = _ei(seg, 3) or _ei(seg, 2)
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
    status: RecordStatus | None  # OBR-25
    issued: datetime | None  # OBR-22, else MSH-7


def _order(g: Group, src: Source) -> _Order:
    obr = g.obr
    if obr is None:
        return _Order(filler(g, src), _specimen(g), "", None, first_time(src.msh.get(7)))
    return _Order(
        filler(g, src),
        _specimen(g),
        obr.get(7),
        tables.result_status(obr.get(25)),
        first_time(obr.get(22), src.msh.get(7)),
    )


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


def observation(
    obx: Segment, test: ObxTest, key: str, order: _Order, subject: Identifier, src: Source, flags: tuple[str, ...]
) -> Observation:
    """One Observation version for ``obx`` (``test``: its :func:`~mappings.hl7v2.obxtest.obx_test`)."""
    value = values.obx_value(obx, test.value_type)
    effective = first_time(obx.get(14), order.obr7)
    event_time = order.issued or effective
    if event_time is None:
        event_time, flags = src.ctx.received_at, (*flags, "EVENT_TIME_FROM_RECEIPT")
    status = test.status or order.status
    if status is None:
        status, flags = RecordStatus.FINAL, (*flags, "STATUS_MISSING")
    if "flags" in value:
        flags = (*flags, *value.pop("flags"))
    # model_validate(dict) builds the same model as Observation(**kwargs) more cheaply (once per OBX)
    return Observation.model_validate(
        {
            "key": key,
            "subject": subject,
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
            **test.reference,
            **value,
        }
    )


def _obx_key(
    obx: Segment, test: ObxTest, order: _Order, src: Source, seen: dict[str, int]
) -> tuple[str, tuple[str, ...]]:
    code = test.code_key or ("#" + set_id if (set_id := obx.get(1)) else "")
    key = src.key("observation", order.filler, code, obx.get(4))
    n = seen.get(key, 0) + 1
    seen[key] = n
    return (key, ()) if n == 1 else (f"{key}#{n}", ("DUPLICATE_KEY_IN_MESSAGE",))


def map_oru(src: Source) -> MappingResult:
    """Observations for every OBX of an ORU message."""
    records: list[Any] = []
    patients: dict[int, pidmod.Patient] = {}
    seen: dict[str, int] = {}
    for g in groups(src):
        pat = patients.get(id(g.pid))
        if pat is None:
            pat = patients[id(g.pid)] = pidmod.patient(g.pid, src)
        order = _order(g, src)
        for obx in g.obx:
            test = obx_test(obx)
            key, kflags = _obx_key(obx, test, order, src, seen)
            records.append(observation(obx, test, key, order, pat.subject, src, kflags))
    pats = list(patients.values())
    links = pats[0].links if len(pats) == 1 else tuple(dict.fromkeys(lnk for p in pats for lnk in p.links))
    if not records:
        raise ValidationError("the result message holds no OBX result", code="HL7_NO_RESULTS")
    warnings = dict.fromkeys(w for p in pats for w in p.warnings)
    return MappingResult(
        records=tuple(records),
        links=links,
        warnings=tuple(warnings),
        message_type=f"ORU^{src.event}",
        source_message_id=src.control_id,
    )
