"""Message-level facts every family needs: type, id, times, sender, threading, patient, attachments.

* MsgHead v1.2: ``MsgInfo/{Type/@V, MsgId, GenDate (text), ConversationRef/{RefToParent, RefToConversation},
  Sender/Organisation (Ident HER|ENH|..., OrganisationName, sub-Organisation, HealthcareProfessional),
  Receiver, Patient}``; the payload's own ``Document/RefDoc/IssueDate/@V``; attachments are the other
  ``RefDoc``s with ``MsgType V="A"`` and a ``MimeType``.
* Standalone v1.x ``Message``: ``{Type/@V, MsgId, GenDate/@V}`` in the message's namespace.

Organisations are scoped as ``<TypeId>:<Id>`` (``HER:59``), HER-id preferred.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from engine.model import AttachmentRef
from mappings.kith import common as c
from mappings.kith import patient as pt
from mappings.kith.node import Node
from mappings.kith.patient import PatientInfo

_ORG_ID_ORDER = ("HER", "ENH", "RSH")


@dataclass(frozen=True)
class Head:
    msg_type: str | None = None
    msg_type_dn: str | None = None
    msg_id: str | None = None
    gen_time: datetime | None = None
    issue_time: datetime | None = None
    sender_scope: str | None = None
    sender_name: str | None = None
    sender_person: str | None = None
    receiver_name: str | None = None
    patient: PatientInfo | None = None
    conversation_ref: str | None = None
    parent_ref: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()


def from_msghead(msghead_el: etree._Element, payload: etree._Element | None) -> Head:
    msghead = Node(msghead_el)
    info = c.find(msghead, "MsgInfo")
    sender = c.find(info, "Sender/Organisation")
    refdoc = _refdoc_of(payload)
    return Head(
        msg_type=c.attr(info, "Type"),
        msg_type_dn=c.attr(info, "Type", "DN"),
        msg_id=c.text(info, "MsgId"),
        gen_time=c.parse_time(c.text(info, "GenDate")),
        issue_time=c.parse_time(c.attr(refdoc, "IssueDate")),
        sender_scope=org_scope(sender),
        sender_name=org_name(sender),
        sender_person=hcp_name(_first_hcp(sender)),
        receiver_name=org_name(c.find(info, "Receiver/Organisation")),
        patient=pt.from_msghead(msghead),
        conversation_ref=c.text(info, "ConversationRef/RefToConversation"),
        parent_ref=c.text(info, "ConversationRef/RefToParent"),
        attachments=_attachments(msghead),
    )


def from_standalone(root: Node) -> Head:
    return Head(
        msg_type=c.attr(root, "Type"),
        msg_type_dn=c.attr(root, "Type", "DN"),
        msg_id=c.text(root, "MsgId"),
        gen_time=c.parse_time(c.attr(root, "GenDate")),
    )


def _refdoc_of(payload: etree._Element | None) -> Node | None:
    content = payload.getparent() if payload is not None else None
    refdoc = content.getparent() if content is not None else None
    return Node(refdoc) if refdoc is not None else None


def _first_hcp(org: Node | None) -> Node | None:
    found = org.descendants("HealthcareProfessional") if org is not None else []
    return found[0] if found else None


def _attachments(msghead: Node) -> tuple[AttachmentRef, ...]:
    out = []
    for refdoc in c.findall(msghead, "Document/RefDoc"):
        if c.attr(refdoc, "MsgType") == "A":
            out.append(AttachmentRef.named(c.text(refdoc, "MimeType") or "application/octet-stream"))
    return tuple(out)


def org_scope(org: Node | None) -> str | None:
    """``HER:<id>`` (else ENH, RSH, or the first Ident) of a MsgHead/fk1 Organisation."""
    idents: list[tuple[str, str]] = []
    for ident in c.findall(org, "Ident"):
        value = c.text(ident, "Id")
        if value:
            idents.append(((c.attr(ident, "TypeId") or "ID").upper(), value))
    for wanted in _ORG_ID_ORDER:
        for kind, value in idents:
            if kind.upper() == wanted:
                return f"{wanted}:{value}"
    return f"{idents[0][0]}:{idents[0][1]}" if idents else None


def org_name(org: Node | None) -> str | None:
    """``"Organisation, sub-unit"`` of a MsgHead/fk1 Organisation."""
    return c.join(c.text(org, "OrganisationName"), c.text(org, "Organisation/OrganisationName"))


def hcp_name(hcp: Node | None) -> str | None:
    """``"Given Middle Family"`` of a MsgHead/fk1 HealthcareProfessional."""
    return c.join(c.text(hcp, "GivenName"), c.text(hcp, "MiddleName"), c.text(hcp, "FamilyName"), sep=" ")


def inst_scope(inst: Node | None) -> str | None:
    """``<TypeId>:<Id>`` of a v1.x ``HCP/Inst`` (``HER:59``)."""
    value = c.text(inst, "Id")
    return f"{(c.attr(inst, 'TypeId') or 'ID').upper()}:{value}" if value else None


def inst_name(inst: Node | None) -> str | None:
    """``"Institution, Department"`` of a v1.x ``HCP/Inst``."""
    return c.join(c.text(inst, "Name"), c.text(inst, "Dept/Name"))
