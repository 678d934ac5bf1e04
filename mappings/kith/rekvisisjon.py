"""Rekvisisjon 1.5 / 1.6 (``.../rekvisisjon/2008-12-01`` and ``/2012-02-15``, root ``Message``): lab orders.

``Message/ServReq/{ServType, IssueDate/@V, MsgDescr, Id, RequestedPrioReport, Patient, ServProvider, Requester,
ReasonAsText, Comment, ReqInvestigation/{ServType, Investigation/Id, AnalysedSubject}}``; the sender is
``Requester/HCP/Inst``.

Mapped to one Requisition (:mod:`mappings.kith.order`): key ``kith:rekvisisjon:<sender>:<ServReq/Id>``; codes =
every requested ``Investigation/Id`` (NLK 7280; ``S`` advisory; a ``ReqInvestigation`` with ServType C is left
out); priority ``RequestedPrioReport`` (FHIR priority + the code); requested ``IssueDate``; reason the
``ReasonAsText`` sections (+ their codes and ``Diagnosis/Concept``); comments ``Comment``. Parties
(:mod:`mappings.kith.hcp`): ``Requester`` and ``Patient/ResponsibleHcp`` requester, ``ServProvider`` performer
(the lab asked to perform), ``CopyDest`` copy. A Specimen per ``AnalysedSubject`` (in ``ReqInvestigation`` or
``Patient``), key ``<requisition>:specimen:<sample id>``, the same sample named by several investigations once.
ServType C cancels, M corrects (requisition and specimens). Event time: the latest of ``IssueDate`` and
``GenDate``.
"""

from __future__ import annotations

from datetime import datetime

from engine.errors import ValidationError
from engine.model import Coding, Identifier, MapContext, Provenance, RecordStatus, Specimen
from mappings.kith import common as c
from mappings.kith import hcp, order
from mappings.kith import patient as pt
from mappings.kith.head import Head, inst_scope
from mappings.kith.node import Node


def map_payload(msg: Node, head: Head, ctx: MapContext) -> c.Part:
    req = c.find(msg, "ServReq")
    if req is None:
        raise ValidationError("Rekvisisjon without ServReq", code="KITH_MISSING_PART")
    part = c.Part()
    inst = c.find(req, "Requester/HCP/Inst")
    scope = inst_scope(inst) or head.sender_scope or "unknown"
    subj = pt.resolve([head.patient, pt.from_message(c.find(req, "Patient"))], scope)
    msg_id = c.text(msg, "MsgId") or head.msg_id
    gen = c.parse_time(c.attr(msg, "GenDate")) or head.gen_time
    time = c.event_time(ctx, part.warnings, c.parse_time(c.attr(req, "IssueDate")), gen, head.issue_time)
    prov = ctx.provenance(source_message_id=head.msg_id or msg_id)
    key = f"kith:rekvisisjon:{scope}:{c.text(req, 'Id') or msg_id or 'unknown'}"
    status = c.status_from_servtype(c.attr(req, "ServType"))
    pat = c.find(req, "Patient")
    wrappers = [(w, "requester") for w in req.all("Requester")]
    wrappers += [(w, "requester") for w in (pat.all("ResponsibleHcp") if pat is not None else [])]
    wrappers += [(w, "performer") for w in req.all("ServProvider")]
    wrappers += [(w, "copy") for w in req.all("CopyDest")]
    requisition = order.requisition(
        req,
        key=key,
        subject=subj.subject,
        time=time,
        prov=prov,
        status=status,
        parties=hcp.named(wrappers, scope, head.parties),
        codes=_investigations(req),
    )
    part.records += [pt.person(subj, time, prov), requisition, *_specimens(req, key, subj.subject, time, prov, status)]
    part.links = pt.links(subj)
    return part


def _specimens(
    req: Node, key: str, subject: Identifier, time: datetime, prov: Provenance, status: RecordStatus
) -> list[Specimen]:
    """A Specimen per distinct sample id among the ``AnalysedSubject`` of the requisition."""
    found: dict[str, Specimen] = {}
    subjects = [*c.findall(req, "Patient/AnalysedSubject"), *c.findall(req, "ReqInvestigation/AnalysedSubject")]
    for i, subj in enumerate(subjects, 1):
        sample = order.sample_id(subj, i)
        if sample not in found:
            found[sample] = order.specimen(
                subj, sample, key=f"{key}:specimen:{sample}", subject=subject, time=time, prov=prov, status=status
            )
    return list(found.values())


def _investigations(req: Node) -> tuple[Coding, ...]:
    out: dict[str, Coding] = {}
    for group in c.findall(req, "ReqInvestigation"):
        if c.attr(group, "ServType") == "C":
            continue
        for inv in c.findall(group, "Investigation/Id"):
            code = c.coding_or_text(inv)  # an investigation named only by its text is kept, uncoded
            if code is not None:
                out.setdefault(code.code if code.code != c.UNSPECIFIED else f"text:{code.display}", code)
    return tuple(out.values())
