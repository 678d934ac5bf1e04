"""Rekvisisjon 1.5 / 1.6 (``.../rekvisisjon/2008-12-01`` and ``/2012-02-15``, root ``Message``): lab orders.

``Message/ServReq/{ServType, IssueDate/@V, MsgDescr, Id, RequestedPrioReport, Patient, ServProvider, Requester,
ReasonAsText, Comment, ReqInvestigation/{ServType, Investigation/Id, AnalysedSubject}}``; the sender is
``Requester/HCP/Inst``.

Mapped to one Referral (a lab order): key ``kith:rekvisisjon:<sender>:<ServReq/Id>``; codes = every requested
``Investigation/Id`` (NLK 7280; ``S`` advisory; a ``ReqInvestigation`` with ServType C is left out); service =
``MsgDescr`` (LAB ...); priority ``RequestedPrioReport``; requester/recipient = the institutions; reason = the
``ReasonAsText`` sections and ``Comment``. ServType C cancels, M corrects. Event time: the latest of
``IssueDate`` and ``GenDate``.
"""

from __future__ import annotations

from engine.errors import ValidationError
from engine.model import Coding, MapContext, Referral
from mappings.kith import common as c
from mappings.kith import patient as pt
from mappings.kith.head import Head, inst_name, inst_scope
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
    reasons = [
        (c.attr(r, "Heading", "DN"), c.element_text(c.find(r, "TextResultValue")))
        for r in c.findall(req, "ReasonAsText")
    ]
    referral = Referral(
        key=f"kith:rekvisisjon:{scope}:{c.text(req, 'Id') or msg_id or 'unknown'}",
        subject=subj.subject,
        event_time=time,
        provenance=prov,
        status=c.status_from_servtype(c.attr(req, "ServType")),
        reason=c.sections([*reasons, ("Kommentar", c.text(req, "Comment"))]),
        codes=_investigations(req),
        priority=c.attr(req, "RequestedPrioReport", "DN") or c.attr(req, "RequestedPrioReport"),
        requester=c.join(c.text(inst, "HCPerson/Name"), inst_name(inst)),
        recipient=inst_name(c.find(req, "ServProvider/HCP/Inst")),
        service=c.coding(c.find(req, "MsgDescr")),
    )
    part.records += [pt.person(subj, time, prov), referral]
    part.links = pt.links(subj)
    return part


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
