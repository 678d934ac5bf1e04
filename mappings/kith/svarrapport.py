"""Svarrapport 1.3 / 1.4 (``.../labsvar/2008-12-01`` and ``/2012-02-15``, root ``Message``): lab, microbiology,
pathology and radiology results, standalone or inside MsgHead.

Per ``ServReport`` (1.3 allows several):

* Document (the report): key ``kith:svar:<lab>:<ServProvId>`` where ``<lab>`` is ``ServProvider/HCP/Inst``
  (``HER:59``); doc type ``Type`` (8279), title ``MsgDescr``, text ``Comment`` + the requisition's
  ``ReasonAsText``; status from ``ServType`` (N/M/C) and ``Status`` (F/P).
* Observation per ``ResultItem``, nested ones too (microbiology isolate -> quantity/resistance, pathology
  sub-results): key ``<report key>:item:<IdResultItem>``; rows without an id are keyed by the isolate they
  refer to (``ref:<RefIdResultItem>/<code>``) or by their parent and code. Code ``Investigation/Id/@V`` (``S``
  advisory), numeric value + ``ArithmeticComp`` comparator + unit (normalised), text value / ``TextCode``,
  ``RefInterval/Descr`` (text kept, limits parsed), ``DevResultInd`` (1 H, 2 L, 3 A), specimen and collection
  time from the referenced ``AnalysedSubject``. Status: the table in :mod:`mappings.kith.status` over the item's
  ``ServType`` and ``StatusInvestigation`` (else its parent item's, else the report's ``ServType``) and the
  report's ``Status``; a whole-report C cancels the report Document and every item.
* A planned report (``Status`` S) is not a result: its items without a status of their own give no observation
  (warning ``KITH_PLANNED:<position>``) and it gives a document only when some item is a result (then
  preliminary); a message that leaves no clinical record at all is rejected with ``KITH_NO_RESULTS``.
* Event time: the latest of ``IssueDate`` and ``GenDate`` (a correction is generated later, so it wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml import etree

from engine.errors import MappingError
from engine.model import AttachmentRef, Coding, Document, MapContext, Observation, Person, Provenance, RecordStatus
from mappings.kith import common as c
from mappings.kith import patient as pt
from mappings.kith import units
from mappings.kith.head import Head, inst_name, inst_scope
from mappings.kith.node import Node
from mappings.kith.status import status as status_of

_FLAG = {"1": "H", "2": "L", "3": "A"}
_IMAGING = frozenset({"RTG", "UL", "CT", "MR", "NUK", "RAD"})
_UNSPECIFIED = Coding(code=c.UNSPECIFIED)


@dataclass
class _Report:
    """What every ResultItem of one ServReport shares."""

    key: str
    subject: pt.Subject
    time: datetime
    prov: Provenance
    status: RecordStatus | None
    serv_type: str | None
    report_status: str | None
    performer: str | None
    samples: dict[str, tuple[datetime | None, Coding | None]]
    keys: set[str] = field(default_factory=set)


def map_payload(msg: Node, head: Head, ctx: MapContext) -> c.Part:
    part = c.Part()
    gen = c.parse_time(c.attr(msg, "GenDate")) or head.gen_time
    msg_id = c.text(msg, "MsgId") or head.msg_id
    for rep in c.findall(msg, "ServReport"):
        _map_report(rep, msg, head, ctx, gen, msg_id, part)
    if all(isinstance(r, Person) for r in part.records):
        raise MappingError("the report carries no result", code="KITH_NO_RESULTS")
    return part


def _map_report(
    rep: Node, msg: Node, head: Head, ctx: MapContext, gen: datetime | None, msg_id: str | None, part: c.Part
) -> None:
    inst = c.find(rep, "ServProvider/HCP/Inst")
    scope = inst_scope(inst) or head.sender_scope or "unknown"
    pat = c.find(rep, "Patient")
    subj = pt.resolve([head.patient, pt.from_message(pat, lab_scope=scope)], scope)
    time = c.event_time(ctx, part.warnings, c.parse_time(c.attr(rep, "IssueDate")), gen, head.issue_time)
    prov = ctx.provenance(source_message_id=head.msg_id or msg_id)
    serv_type, report_status = c.attr(rep, "ServType"), c.attr(rep, "Status")
    report_id = c.text(rep, "ServProvId") or c.text(rep, "ServReq/Id") or msg_id or "unknown"
    info = _Report(
        key=f"kith:svar:{scope}:{report_id}",
        subject=subj,
        time=time,
        prov=prov,
        status=status_of(serv_type, None, report_status),
        serv_type=serv_type,
        report_status=report_status,
        performer=inst_name(inst),
        samples=_samples(pat),
    )
    part.records.append(pt.person(subj, time, prov))
    part.links += pt.links(subj)
    doc_at = len(part.records)
    results = _items(pat, info, "", (serv_type, None), None, None, part)
    doc_status = info.status or (RecordStatus.PRELIMINARY if results else None)
    if doc_status is not None:
        part.records.insert(doc_at, _document(rep, msg, info, doc_status))


def _document(rep: Node, msg: Node, info: _Report, status: RecordStatus) -> Document:
    descr = c.coding(c.find(rep, "MsgDescr"))
    code = c.attr(msg, "Type") or "SVAR_LAB"
    if code == "S":  # v1.3: one type for all; tell imaging from lab by MsgDescr
        code = "SVAR_RTG" if descr is not None and descr.code in _IMAGING else "SVAR_LAB"
    reasons = [
        (c.attr(r, "Heading", "DN"), c.element_text(c.find(r, "TextResultValue")))
        for r in c.findall(rep, "ServReq/ReasonAsText")
    ]
    return Document(
        key=info.key,
        subject=info.subject.subject,
        event_time=info.time,
        status=status,
        provenance=info.prov,
        doc_type=c.doc_type(code, c.attr(msg, "Type", "DN")),
        title=descr.display or descr.code if descr else c.attr(rep, "MsgDescr", "OT"),
        text=c.sections([("Kommentar", c.text(rep, "Comment")), *reasons]),
        author=info.performer,
        attachments=tuple(
            AttachmentRef.named(c.text(d, "MimeType") or "application/octet-stream") for d in c.findall(rep, "RefDoc")
        ),
    )


def _samples(pat: Node | None) -> dict[str, tuple[datetime | None, Coding | None]]:
    out: dict[str, tuple[datetime | None, Coding | None]] = {}
    for i, subj in enumerate(c.findall(pat, "AnalysedSubject"), 1):
        sample_id = c.text(subj, "IdByServProvider") or f"#{i}"
        specimen = c.coding(c.find(subj, "TypeCoded"))
        if specimen is None and c.text(subj, "Type"):
            specimen = Coding(code=c.text(subj, "Type") or "")
        out[sample_id] = (c.parse_time(c.attr(subj, "CollectedSample/CollectedDate")), specimen)
    return out


def _items(
    parent: Node | None,
    info: _Report,
    parent_key: str,
    inherited: tuple[str | None, str | None],
    parent_code: Coding | None,
    where: str | None,
    part: c.Part,
) -> int:
    """Map the ``ResultItem`` children of ``parent`` (recursively); ``inherited`` = (ServType,
    StatusInvestigation) of the parent. Returns how many observations were made."""
    made = 0
    for i, item in enumerate(c.findall(parent, "ResultItem"), 1):
        pos = f"{where}/ResultItem[{i}]" if where else f"ResultItem[{i}]"
        fields = item.index()
        codes = (
            c.el_attr(fields.get("ServType")) or inherited[0],
            c.el_attr(fields.get("StatusInvestigation")) or inherited[1],
        )
        code = (
            c.coding_at(item, "Investigation/Id")
            or c.coding_at(item, "TextResult/Heading")
            or c.uncoded(c.find(item, "Investigation/Id"))
            or parent_code
            or _UNSPECIFIED
        )
        status = RecordStatus.CANCELLED if info.serv_type == "C" else status_of(*codes, info.report_status)
        key = _item_key(fields, info, parent_key, code, i)
        if status is None:
            part.warnings.append(f"KITH_PLANNED:{pos}")
        else:
            try:
                part.records.append(_observation(item, fields, info, key, code, status))
            except (ValueError, TypeError):
                part.warnings.append(f"KITH_PART_UNMAPPED:{pos}")
                continue
            made += 1
        made += _items(item, info, key[len(info.key) + 1 :], codes, code, pos, part)
    return made


def _observation(
    item: Node, fields: dict[str, etree._Element], info: _Report, key: str, code: Coding, status: RecordStatus
) -> Observation:
    effective, specimen = _sample_of(fields, info)
    value = _value(item)
    descr = c.text(item, "RefInterval/Descr")
    low, high = units.parse_range(descr)
    flag = c.el_attr(fields.get("DevResultInd"))
    return Observation(
        key=key,
        subject=info.subject.subject,
        event_time=info.time,
        provenance=info.prov,
        status=status,
        code=code,
        specimen=specimen,
        report_id=info.key,
        effective_time=effective or c.parse_time(c.el_attr(fields.get("InvDate"))),
        performer=info.performer,
        reference_range=descr,
        ref_low=low,
        ref_high=high,
        abnormal_flag=_FLAG.get(flag, flag) if flag else None,
        **value,
    )


def _item_key(fields: dict[str, etree._Element], info: _Report, parent_key: str, code: Coding, index: int) -> str:
    own = c.el_text(fields.get("IdResultItem"))
    ref = c.el_text(fields.get("RefIdResultItem"))
    if own:
        local = f"item:{own}"
    elif ref:
        local = f"ref:{ref}/{code.code}"
    else:
        label = code.code if code.code != c.UNSPECIFIED else code.display or f"#{index}"
        local = f"{parent_key or 'item'}/{label}"
    return f"{info.key}:{c.unique_key(local, info.keys)}"


def _sample_of(fields: dict[str, etree._Element], info: _Report) -> tuple[datetime | None, Coding | None]:
    ref = c.el_text(fields.get("RefAnalysedSubject"))
    if ref and ref in info.samples:
        return info.samples[ref]
    if len(info.samples) == 1 and ref is None:
        return next(iter(info.samples.values()))
    return None, None


def _value(item: Node) -> dict[str, Any]:
    comment = c.text(item, "Comment")
    num_result = item.find("NumResult")
    num = c.find(num_result, "NumResultValue")
    if num is not None:
        raw = num.get("V")
        value, comp = units.parse_number(raw)
        comp = units.comparator(c.attr(num_result, "ArithmeticComp")) or comp
        text = None if value is not None else raw
        return {
            "value_type": "NM",
            "value_num": value,
            "comparator": comp,
            "unit": units.normalise_unit(num.get("U")),
            "value_text": c.join(text, comment, sep="\n"),
        }
    text_el = c.find(item, "TextResult")
    if text_el is not None:
        text = c.element_text(c.find(text_el, "TextResultValue"))
        codes = c.findall(text_el, "TextCode")
        value_code = c.coding(codes[0]) if codes else None
        if value_code is None and codes:  # a TextCode without V: its text, never as a code
            uncoded = c.uncoded(codes[0])
            text = text or (uncoded.display if uncoded else None)
        return {
            "value_type": "TX" if text else "CE",
            "value_text": c.join(text, comment, sep="\n"),
            "value_code": value_code,
            "unit": units.normalise_unit(c.text(text_el, "Unit")),
        }
    date_v = c.attr(item, "DateResult/DateResultValue")
    if date_v:
        return {"value_type": "DT", "value_text": c.join(date_v, comment, sep="\n")}
    interval = c.find(item, "Interval")
    if interval is not None:
        (lo, unit), (hi, _) = c.quantity(c.find(interval, "Low")), c.quantity(c.find(interval, "High"))
        return {
            "value_type": "IVL",
            "value_text": c.join(f"{lo or ''} - {hi or ''}", comment, sep="\n"),
            "unit": units.normalise_unit(unit),
        }
    return {"value_text": comment}
