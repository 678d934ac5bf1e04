"""Svarrapport 1.3 / 1.4 (``.../labsvar/2008-12-01`` and ``/2012-02-15``, root ``Message``): lab, microbiology,
pathology and radiology results, standalone or inside MsgHead.

Per ``ServReport`` (1.3 allows several), keys under ``kith:svar:<lab>:<ServProvId>`` (``<lab>`` is
``ServProvider/HCP/Inst``, ``HER:59``):

* Report (FHIR DiagnosticReport), key ``<report>``: code ``MsgDescr`` and its category (lab, microbiology,
  pathology, radiology), status from ``ServType`` (N/M/C) and ``Status`` (F/P) by :mod:`mappings.kith.status`,
  ``IssueDate`` (issued), ``ServProvId`` (report id), ``Comment`` / ``CodedComment`` (comments), the MsgHead's
  attachments (their bytes in ``MappingResult.attachments``) and the report's own ``RefDoc`` (named: content
  type and description), the keys of its results, requisition and specimens; a
  pathology report's conclusion is the text of its diagnosis items and its conclusion codes every
  ``TextCode`` and ``DiagComment/Concept`` of its items (all SNOMED codes, in order).
* Parties (:mod:`mappings.kith.hcp`): ``ServProvider`` performer, ``Requester`` requester,
  ``RelServProv`` responsible (or the role of its ``Relation``), ``Patient/ResponsibleHcp``, ``CopyDest`` copy,
  and the MsgHead's sender, recipient and copy parties (:mod:`mappings.kith.head`); the same person or
  organisation named twice in one role is one party with the ids of both (:func:`mappings.kith.hcp.merged`);
  the report names them all, the requisition its requester, a
  result the ``RelServProv`` of its own item or of the item it is nested in (its lab is the report's
  performer, named through ``report_key`` and in ``performer``: not repeated on every result, which would
  double the bytes the store writes per message).
* Requisition, key ``<report>:requisition``, and a Specimen per ``AnalysedSubject``, key
  ``<report>:specimen:<sample id>`` (:mod:`mappings.kith.order`).
* Observation per ``ResultItem``, nested ones too (microbiology isolate -> quantity/resistance, pathology
  sub-results): code the first ``Investigation/Id`` (``S`` advisory), every further one in ``alt_codes``
  (a lab's local code beside NPU/NOR), ``OT`` in ``code_text``; numeric value + ``ArithmeticComp`` + unit
  (normalised), text value / ``TextCode``, ``DateResult`` as a date; ``RefInterval/Descr`` (text kept, limits
  parsed), ``DevResultInd`` (1 H, 2 L, 3 A); the item's ``Comment`` in ``comments`` (never in the value);
  specimen, collection time (a date alone as ``effective_date``) and specimen key from the referenced
  ``AnalysedSubject``; ``InvDate`` analysed, ``MedicalValidationDate`` / ``CounterSignDate`` approved,
  ``StatusChangeDate`` / ``DescrDate`` issued (dates alone are not made midnight: a date-only ``InvDate`` is the
  effective date when no sample time is known); ``derived_from`` the key of the item it is nested in, or of
  the isolate its ``RefIdResultItem`` names.
* Status: the table in :mod:`mappings.kith.status` over the item's ``ServType`` and ``StatusInvestigation``
  (else its parent item's, else the report's ``ServType``) and the report's ``Status``; a whole-report C
  cancels the report and every item.
* A planned report (``Status`` S) is not a result: its items without a status of their own give no observation
  (warning ``KITH_PLANNED:<position>``) and it gives a report only when some item is a result (then
  preliminary); a message that leaves no clinical record at all is rejected with ``KITH_NO_RESULTS``.
* Event time: the latest of ``IssueDate`` and ``GenDate`` (a correction is generated later, so it wins).

Result keys (``<report>:<local>``), the same in every message of the report so that a later one replaces an
earlier one:

* a top-level item of a report that is not microbiology, whose analysis code is known and appears once among
  the report's top-level items: ``item/<code>``. So a pending item sent without ``IdResultItem`` ("analysis
  pending") is replaced by the final result of the same analysis whatever id that one has, and a
  cancellation whose ``IdResultItem`` differs by a typo still retracts the original;
* else an item with ``IdResultItem``: ``item:<id>``, the id normalised (:func:`normalise_id`: no whitespace,
  upper case, no leading zeros) in every message, so a sender's typo in case, spacing or zeros does not
  make a new result;
* else one with ``RefIdResultItem``: ``ref:<id>/<code>`` (id normalised); else ``<parent>/<code>`` by its
  parent item and code (``#<n>`` by position when it has no code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from lxml import etree

from engine.errors import MappingError
from engine.model import (
    AttachmentRef,
    Coding,
    MapContext,
    Observation,
    Party,
    Person,
    Provenance,
    RecordStatus,
    Report,
    Specimen,
)
from mappings.kith import common as c
from mappings.kith import hcp, order, units
from mappings.kith import patient as pt
from mappings.kith.head import Head, inst_scope
from mappings.kith.node import Node
from mappings.kith.status import status as status_of
from mappings.kith.xml import first_child, tag_name

_FLAG = {"1": "H", "2": "L", "3": "A"}
_IMAGING = frozenset({"RTG", "UL", "CT", "MR", "NUK", "RAD"})
_PATHOLOGY = frozenset({"HIST", "CYTO", "PAT", "OBD", "CYT", "HISTO"})
_MICRO = frozenset({"MBIO", "MIK", "MIKRO"})
#: pathology item headings (``TextResult/Heading``) whose text is the report's conclusion
_DIAGNOSIS = frozenset({"DIAG", "D", "KONK", "K", "DI", "DG"})
_UNSPECIFIED = Coding(code=c.UNSPECIFIED)
_NO_SAMPLE: tuple[None, None, None, None] = (None, None, None, None)
_ID_JUNK = re.compile(r"\s+")


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
    samples: dict[str, tuple[datetime | None, date | None, Coding | None, str]]
    requisition_key: str | None
    by_code: bool
    pathology: bool
    unique_codes: frozenset[str] = frozenset()
    keys: set[str] = field(default_factory=set)
    ids: dict[str, str] = field(default_factory=dict)
    #: the sample of each item key, inherited by the items nested in it (a quantity under its isolate)
    item_samples: dict[str, tuple[datetime | None, date | None, Coding | None, str | None]] = field(
        default_factory=dict
    )
    results: list[str] = field(default_factory=list)
    conclusion: list[str] = field(default_factory=list)
    conclusion_codes: list[Coding] = field(default_factory=list)


def normalise_id(value: str) -> str:
    """A result item id as a key part: no whitespace, upper case, no leading zeros (``" 0a12"`` -> ``A12``)."""
    squeezed = _ID_JUNK.sub("", value).upper()
    return squeezed.lstrip("0") or squeezed


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
    key = f"kith:svar:{scope}:{report_id}"
    performers = hcp.parties(rep.find("ServProvider"), "performer", scope)
    req = rep.find("ServReq")
    descr = c.attr(rep, "MsgDescr")
    own_status = status_of(serv_type, None, report_status)
    specimens = _specimens(pat, key, subj, prov, (time, own_status, req))
    info = _Report(
        key=key,
        subject=subj,
        time=time,
        prov=prov,
        status=own_status,
        serv_type=serv_type,
        report_status=report_status,
        performer=_name(hcp.first_org(performers)),
        samples=_samples(specimens),
        requisition_key=f"{key}:requisition" if req is not None else None,
        by_code=(descr or "").upper() not in _MICRO,
        pathology=(descr or "").upper() in _PATHOLOGY,
    )
    top = c.findall(pat, "ResultItem")
    info.unique_codes = _unique_codes(top) if info.by_code else frozenset()
    part.records.append(pt.person(subj, time, prov))
    part.links += pt.links(subj)
    report_at = len(part.records)
    made = _items(top, info, "", (serv_type, None), None, None, (), part)
    report_status_ = info.status or (RecordStatus.PRELIMINARY if made else None)
    if report_status_ is None:
        return
    parties = _report_parties(rep, pat, head, scope)
    extra: list[Any] = [_report(rep, msg, info, report_status_, parties, head.attachments)]
    part.attachments = head.attachment_data
    if req is not None and info.requisition_key is not None:
        requester = tuple(p for p in parties if p.role in ("requester", "gp"))
        extra.append(
            order.requisition(
                req,
                key=info.requisition_key,
                subject=subj.subject,
                time=time,
                prov=prov,
                status=_requisition_status(req, report_status_),
                parties=requester,
            )
        )
    extra += specimens
    part.records[report_at:report_at] = extra


def _requisition_status(req: Node, report: RecordStatus) -> RecordStatus:
    """The requisition's own ``ServType``; cancelled with its report (it is the report's view of the order)."""
    if report is RecordStatus.CANCELLED:
        return report
    return c.status_from_servtype(c.attr(req, "ServType"))


def _name(party: Party | None) -> str | None:
    """``"Institution, Department"`` of the lab (the ``performer`` text results always had)."""
    if party is None:
        return None
    return c.join(party.organization, party.name) if party.organization else party.name


def _report_parties(rep: Node, pat: Node | None, head: Head, scope: str) -> tuple[Party, ...]:
    wrappers = [(w, "performer") for w in rep.all("ServProvider")]
    wrappers += [(w, "requester") for w in rep.all("Requester")]
    if pat is not None:
        wrappers += [(w, "responsible") for w in pat.all("ResponsibleHcp")]
    wrappers += [(w, "responsible") for w in rep.all("RelServProv")]
    wrappers += [(w, "copy") for w in rep.all("CopyDest")]
    return hcp.named(wrappers, scope, head.parties)


def _report(
    rep: Node,
    msg: Node,
    info: _Report,
    status: RecordStatus,
    parties: tuple[Party, ...],
    head_attachments: tuple[AttachmentRef, ...],
) -> Report:
    descr = c.coding(c.find(rep, "MsgDescr"))
    issued, issued_date = c.time_or_date(c.attr(rep, "IssueDate"))
    comments = [
        c.text(rep, "Comment"),
        *(c.attr(n, "", "DN") or c.attr(n, "", "OT") for n in c.findall(rep, "CodedComment")),
    ]
    samples = list(info.samples.values())
    return Report(
        key=info.key,
        subject=info.subject.subject,
        event_time=info.time,
        status=status,
        provenance=info.prov,
        parties=parties or None,
        comments=tuple(x for x in comments if x) or None,
        code=descr,
        code_text=c.attr(rep, "MsgDescr", "OT") if descr is None else None,
        category=_category(msg, descr),
        report_id=c.text(rep, "ServProvId"),
        issued=issued,
        effective_time=samples[0][0] if len(samples) == 1 else None,
        effective_date=(samples[0][1] or issued_date) if len(samples) == 1 else None,
        conclusion="\n\n".join(info.conclusion) or None,
        conclusion_codes=tuple(dict.fromkeys(info.conclusion_codes)) or None,
        result_keys=tuple(info.results) or None,
        requisition_key=info.requisition_key,
        specimen_keys=tuple(s[3] for s in samples) or None,
        attachments=(
            *head_attachments,
            *(
                AttachmentRef.named(c.text(d, "MimeType") or "application/octet-stream", c.text(d, "Description"))
                for d in c.findall(rep, "RefDoc")
            ),
        )
        or None,
    )


def _category(msg: Node, descr: Coding | None) -> str:
    code = (descr.code if descr else "").upper()
    if code in _IMAGING or c.attr(msg, "Type") == "SVAR_RTG":
        return "radiology"
    if code in _PATHOLOGY:
        return "pathology"
    return "microbiology" if code in _MICRO else "lab"


def _specimens(
    pat: Node | None,
    key: str,
    subject: pt.Subject,
    prov: Provenance,
    head: tuple[datetime, RecordStatus | None, Node | None],
) -> list[Specimen]:
    """A Specimen per ``AnalysedSubject`` (cancelled with a cancelled report); ``head`` = (event time, report
    status, ServReq), the last for the requisition's ``ReceiptDate``."""
    time, status, req = head
    own = RecordStatus.CANCELLED if status is RecordStatus.CANCELLED else RecordStatus.FINAL
    received = c.time_or_date(c.attr(req, "ReceiptDate"))[0]
    out = []
    for i, subj in enumerate(c.findall(pat, "AnalysedSubject"), 1):
        sample = order.sample_id(subj, i)
        out.append(
            order.specimen(
                subj,
                sample,
                key=f"{key}:specimen:{sample}",
                subject=subject.subject,
                time=time,
                prov=prov,
                status=own,
                received_at=received,
            )
        )
    return out


def _samples(specimens: list[Specimen]) -> dict[str, tuple[datetime | None, date | None, Coding | None, str]]:
    """Sample id -> what a result takes from its sample: collection time or date, type, specimen key."""
    return {s.sample_id or s.key: (s.collected_at, s.collected_date, s.specimen_type, s.key) for s in specimens}


def _unique_codes(top: list[Node]) -> frozenset[str]:
    """Analysis codes that appear once among the top-level items (those items are keyed by their code)."""
    seen: dict[str, int] = {}
    for item in top:
        code = item.find_el("Investigation/Id")
        value = None if code is None else c.el_attr(code)
        if value:
            seen[value] = seen.get(value, 0) + 1
    return frozenset(k for k, n in seen.items() if n == 1)


def _items(
    items: list[Node],
    info: _Report,
    parent_key: str,
    inherited: tuple[str | None, str | None],
    parent_code: Coding | None,
    where: str | None,
    inherited_parties: tuple[Party, ...],
    part: c.Part,
) -> int:
    """Map ``items`` (a parent's ``ResultItem`` children), recursively; ``inherited`` = (ServType,
    StatusInvestigation) of the parent. Returns how many observations were made."""
    made = 0
    for i, item in enumerate(items, 1):
        pos = f"{where}/ResultItem[{i}]" if where else f"ResultItem[{i}]"
        fields = item.index()
        codes = (
            c.el_attr(fields.get("ServType")) or inherited[0],
            c.el_attr(fields.get("StatusInvestigation")) or inherited[1],
        )
        ids = [x for x in (c.coding_of(el) for inv in item.all("Investigation") for el in _ids_of(inv)) if x]
        code = (
            (ids[0] if ids else None)
            or c.coding_at(item, "TextResult/Heading")
            or c.uncoded(c.find(item, "Investigation/Id"))
            or parent_code
            or _UNSPECIFIED
        )
        status = RecordStatus.CANCELLED if info.serv_type == "C" else status_of(*codes, info.report_status)
        key = _item_key(fields, info, parent_key, code, i)
        own = tuple(p for w in item.all("RelServProv") for p in hcp.parties(Node(w), "responsible"))
        parties = inherited_parties + own if own else inherited_parties
        if status is None:
            part.warnings.append(f"KITH_PLANNED:{pos}")
        else:
            try:
                obs = _observation(item, fields, info, key, code, status, ids[1:], parties, parent_key)
            except (ValueError, TypeError):
                part.warnings.append(f"KITH_PART_UNMAPPED:{pos}")
                continue
            part.records.append(obs)
            info.results.append(key)
            if info.pathology:
                _conclude(item, info)
            made += 1
        nested = item.findall("ResultItem")
        if nested:
            made += _items(nested, info, key[len(info.key) + 1 :], codes, code, pos, parties, part)
    return made


def _ids_of(inv: etree._Element) -> list[etree._Element]:
    """Every ``Id`` child of an ``Investigation`` (a lab's local code may follow the NPU/NOR one)."""
    return [el for el in inv if tag_name(el.tag) == "Id"]


def _conclude(item: Node, info: _Report) -> None:
    """Collect a pathology item's diagnosis text and every code it gives (TextCode, DiagComment)."""
    text_result = item.first("TextResult")
    if text_result is not None:
        tr = Node(text_result)
        for el in tr.all("TextCode"):
            found = c.coding_of(el)
            if found is not None:
                info.conclusion_codes.append(found)
        heading = (c.attr(tr, "Heading") or "").upper()
        if heading in _DIAGNOSIS:
            text = c.element_text(tr.find("TextResultValue"))
            if text:
                info.conclusion.append(text)
    diag = item.first("DiagComment")
    if diag is not None:
        dn = Node(diag)
        for el in (*dn.all("Concept"), *(m for mod in dn.all("Modifier") for m in Node(mod).all("Value"))):
            found = c.coding_of(el)
            if found is not None:
                info.conclusion_codes.append(found)


def _observation(
    item: Node,
    fields: dict[str, etree._Element],
    info: _Report,
    key: str,
    code: Coding,
    status: RecordStatus,
    alt: list[Coding],
    parties: tuple[Party, ...],
    parent_key: str,
) -> Observation:
    at, day, specimen, specimen_key = sample = _sample_of(fields, info, parent_key)
    if specimen_key is not None and "ResultItem" in fields:  # only items with nested items pass it on
        info.item_samples[key] = sample
    value = _value(item)
    descr = c.text(item, "RefInterval/Descr")
    low, high = units.parse_range(descr)
    flag = c.el_attr(fields.get("DevResultInd"))
    inv_at, inv_day = c.time_or_date(c.el_attr(fields.get("InvDate")))
    inv = fields.get("Investigation")
    ot = None
    comments: tuple[str, ...] | None = None
    if inv is not None:
        first_id = first_child(inv, "Id")
        ot = c.el_attr(first_id, "OT") if first_id is not None and first_id.get("V") else None
        inv_comment = c.el_text(first_child(inv, "Comment")) if len(inv) > 1 else None
        comments = (inv_comment,) if inv_comment else None
    own_comment = c.el_text(fields.get("Comment"))
    if own_comment:
        comments = (own_comment, *comments) if comments else (own_comment,)
    return Observation(
        key=key,
        subject=info.subject.subject,
        event_time=info.time,
        provenance=info.prov,
        status=status,
        parties=parties or None,
        comments=comments,
        code=code,
        alt_codes=tuple(alt) or None,
        code_text=ot if ot and ot != code.display else None,
        specimen=specimen,
        report_id=info.key,
        effective_time=at or (None if day else inv_at),
        effective_date=day or (None if at or inv_at else inv_day),
        performer=info.performer,
        reference_range=descr,
        ref_low=low,
        ref_high=high,
        abnormal_flag=_FLAG.get(flag, flag) if flag else None,
        issued=_time(fields, "StatusChangeDate") or _time(fields, "DescrDate"),
        analysed_at=inv_at,
        approved_at=_time(fields, "MedicalValidationDate") or _time(fields, "CounterSignDate"),
        report_key=info.key,
        requisition_key=info.requisition_key,
        specimen_key=specimen_key,
        derived_from=_derived_from(fields, info, parent_key),
        **value,
    )


def _time(fields: dict[str, etree._Element], name: str) -> datetime | None:
    return c.time_or_date(c.el_attr(fields.get(name)))[0]


def _derived_from(fields: dict[str, etree._Element], info: _Report, parent_key: str) -> tuple[str, ...] | None:
    """The item this one is nested in, else the isolate its ``RefIdResultItem`` names."""
    if parent_key:
        return (f"{info.key}:{parent_key}",)
    ref = c.el_text(fields.get("RefIdResultItem"))
    if ref:
        ref = normalise_id(ref)
        return (info.ids.get(ref) or f"{info.key}:item:{ref}",)
    return None


def _item_key(fields: dict[str, etree._Element], info: _Report, parent_key: str, code: Coding, index: int) -> str:
    raw_own = c.el_text(fields.get("IdResultItem"))
    own = normalise_id(raw_own) if raw_own else None
    ref = c.el_text(fields.get("RefIdResultItem"))
    if not parent_key and not ref and code.code in info.unique_codes:
        local = f"item/{code.code}"
    elif own:
        local = f"item:{own}"
    elif ref:
        local = f"ref:{normalise_id(ref)}/{code.code}"
    else:
        label = code.code if code.code != c.UNSPECIFIED else code.display or f"#{index}"
        local = f"{parent_key or 'item'}/{label}"
    key = f"{info.key}:{c.unique_key(local, info.keys)}"
    if own:
        info.ids.setdefault(own, key)
    return key


def _sample_of(
    fields: dict[str, etree._Element], info: _Report, parent_key: str
) -> tuple[datetime | None, date | None, Coding | None, str | None]:
    """The referenced ``AnalysedSubject``, else the only one, else the sample of the item this one is nested in."""
    ref = c.el_text(fields.get("RefAnalysedSubject"))
    if ref and ref in info.samples:
        return info.samples[ref]
    if len(info.samples) == 1 and ref is None:
        return next(iter(info.samples.values()))
    if parent_key:
        return info.item_samples.get(f"{info.key}:{parent_key}", _NO_SAMPLE)
    return _NO_SAMPLE


def _value(item: Node) -> dict[str, Any]:
    num_result = item.find("NumResult")
    num = c.find(num_result, "NumResultValue")
    if num is not None:
        raw = num.get("V")
        value, comp = units.parse_number(raw)
        comp = units.comparator(c.attr(num_result, "ArithmeticComp")) or comp
        return {
            "value_type": "NM",
            "value_num": value,
            "comparator": comp,
            "unit": units.normalise_unit(num.get("U")),
            "value_text": None if value is not None else raw,
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
            "value_text": text,
            "value_code": value_code,
            "unit": units.normalise_unit(c.text(text_el, "Unit")),
        }
    date_v = c.attr(item, "DateResult/DateResultValue")
    if date_v:
        _, day = c.time_or_date(date_v)
        return {"value_type": "DT", "value_date": day, "value_text": None if day else date_v}
    interval = c.find(item, "Interval")
    if interval is not None:
        (lo, unit), (hi, _) = c.quantity(c.find(interval, "Low")), c.quantity(c.find(interval, "High"))
        return {"value_type": "IVL", "value_text": f"{lo or ''} - {hi or ''}", "unit": units.normalise_unit(unit)}
    return {}
