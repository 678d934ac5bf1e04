"""Message-level facts every family needs: type, id, times, sender, threading, patient, attachments.

* MsgHead v1.2: ``MsgInfo/{Type/@V, MsgId, GenDate (text), ConversationRef/{RefToParent, RefToConversation},
  Sender/Organisation (Ident HER|ENH|..., OrganisationName, sub-Organisation, HealthcareProfessional),
  Receiver, OtherReceiver, Patient}``; the payload's own ``Document/RefDoc/IssueDate/@V``.
* Parties (:mod:`mappings.kith.fk1`, on every record of the message): ``Sender`` -> ``sender``, ``Receiver``
  -> ``recipient``, ``OtherReceiver`` -> ``copy`` (``RoleReceiver`` COP) or ``other``.
* Attachments are the other ``RefDoc``s with ``MsgType V="A"``: ``MimeType``, ``Description`` and the bytes
  of ``Content/Base64Container`` (or base64 text right in ``Content``), decoded once into an
  :class:`engine.model.Attachment`; a RefDoc without content (a ``FileReference``) is named only
  (:meth:`AttachmentRef.named`), and one whose base64 does not decode is named and flagged
  ``KITH_ATTACHMENT_UNDECODABLE`` (the rest of the message maps).
* Standalone v1.x ``Message``: ``{Type/@V, MsgId, GenDate/@V}`` in the message's namespace.

Organisations are scoped as ``<TypeId>:<Id>`` (``HER:59``), HER-id preferred.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from engine.model import Attachment, AttachmentRef, Party
from mappings.kith import common as c
from mappings.kith import fk1, hcp
from mappings.kith import patient as pt
from mappings.kith.node import Node
from mappings.kith.patient import PatientInfo

_ORG_ID_ORDER = ("HER", "ENH", "RSH")
_OCTETS = "application/octet-stream"
UNDECODABLE = "KITH_ATTACHMENT_UNDECODABLE"
_MEMO_SIZE = 4096
#: (elements' bytes, sender scope, roles) -> parties; bounded, values immutable (as the lru_caches here)
_PARTIES_MEMO: dict[tuple[bytes, str, str], tuple[Party, ...]] = {}
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=\s]")


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
    #: sender, recipient and copy parties of the MsgHead (empty for a standalone message)
    parties: tuple[Party, ...] = ()
    #: the decoded bytes of the attachments (:attr:`attachments` refer to them by sha256)
    attachment_data: tuple[Attachment, ...] = ()
    #: ``KITH_ATTACHMENT_UNDECODABLE`` when an attachment's base64 does not decode
    flags: tuple[str, ...] = ()
    #: the MsgHead element these facts were read from (the next payload of the same MsgHead reuses them)
    source: object = field(default=None, compare=False, repr=False)


def from_msghead(msghead_el: etree._Element, payload: etree._Element | None, prior: Head | None = None) -> Head:
    """The head facts for one payload; what does not depend on the payload is reused from ``prior`` when it
    was read from the same MsgHead (a MsgHead with several payloads decodes its attachments once)."""
    msghead = Node(msghead_el)
    info = c.find(msghead, "MsgInfo")
    sender = c.find(info, "Sender/Organisation")
    refdoc = _refdoc_of(payload)
    scope = org_scope(sender)
    if prior is not None and prior.source is msghead_el:
        shared = (prior.patient, prior.parties, prior.attachments, prior.attachment_data, prior.flags)
    else:
        shared = (pt.from_msghead(msghead), _parties(info, scope or "unknown"), *_attachments(msghead))
    patient, parties, refs, data, flags = shared
    return Head(
        msg_type=c.attr(info, "Type"),
        msg_type_dn=c.attr(info, "Type", "DN"),
        msg_id=c.text(info, "MsgId"),
        gen_time=c.parse_time(c.text(info, "GenDate")),
        issue_time=c.parse_time(c.attr(refdoc, "IssueDate")),
        sender_scope=scope,
        sender_name=org_name(sender),
        sender_person=hcp_name(_first_hcp(sender)),
        receiver_name=org_name(c.find(info, "Receiver/Organisation")),
        patient=patient,
        conversation_ref=c.text(info, "ConversationRef/RefToConversation"),
        parent_ref=c.text(info, "ConversationRef/RefToParent"),
        attachments=refs,
        parties=parties,
        attachment_data=data,
        flags=flags,
        source=msghead_el,
    )


def from_standalone(root: Node) -> Head:
    return Head(
        msg_type=c.attr(root, "Type"),
        msg_type_dn=c.attr(root, "Type", "DN"),
        msg_id=c.text(root, "MsgId"),
        gen_time=c.parse_time(c.attr(root, "GenDate")),
    )


def _parties(info: Node | None, scope: str) -> tuple[Party, ...]:
    """The MsgHead's parties (:func:`_memo`)."""
    routing = [el for el in (c.find(info, "Sender"), c.find(info, "Receiver"), *c.findall(info, "OtherReceiver")) if el]
    return _memo(routing, scope, _read_parties, "msghead")


def _memo(
    nodes: list[Node], scope: str, read: Callable[[list[Node], str], tuple[Party, ...]], roles: str
) -> tuple[Party, ...]:
    """``read(nodes, scope)``, memoised by the exact bytes of the elements, the scope and the ``roles`` they are
    read in: the same senders, receivers and practitioners recur in every message, and reading them costs more
    than serialising them."""
    key = (b"".join(etree.tostring(n.el) for n in nodes), scope, roles)
    found = _PARTIES_MEMO.get(key)
    if found is None:
        found = read(nodes, scope)
        if len(_PARTIES_MEMO) >= _MEMO_SIZE:
            _PARTIES_MEMO.clear()
        _PARTIES_MEMO[key] = found
    return found


def _read_parties(routing: list[Node], scope: str) -> tuple[Party, ...]:
    found: list[Party] = []
    for node in routing:
        name = node.name
        role = "sender" if name == "Sender" else "recipient" if name == "Receiver" else None
        if role is None:
            role = "copy" if c.attr(node, "RoleReceiver") == "COP" else "other"
        found += fk1.organisation(c.find(node, "Organisation"), role, scope)
    return tuple(dict.fromkeys(found))


def _refdoc_of(payload: etree._Element | None) -> Node | None:
    content = payload.getparent() if payload is not None else None
    refdoc = content.getparent() if content is not None else None
    return Node(refdoc) if refdoc is not None else None


def _first_hcp(org: Node | None) -> Node | None:
    found = org.descendants("HealthcareProfessional") if org is not None else []
    return found[0] if found else None


def _attachments(msghead: Node) -> tuple[tuple[AttachmentRef, ...], tuple[Attachment, ...], tuple[str, ...]]:
    """The refs, decoded bytes and flags of the MsgHead's attachment RefDocs (``MsgType`` A)."""
    refs: list[AttachmentRef] = []
    data: list[Attachment] = []
    flags: tuple[str, ...] = ()
    for refdoc in c.findall(msghead, "Document/RefDoc"):
        if c.attr(refdoc, "MsgType") != "A":
            continue
        mime, descr = c.text(refdoc, "MimeType") or _OCTETS, c.text(refdoc, "Description")
        encoded = _base64_text(c.find(refdoc, "Content"))
        if encoded is None:
            refs.append(AttachmentRef.named(mime, descr))
            continue
        try:
            found = Attachment.of(_decode(encoded), mime)
        except (binascii.Error, ValueError):
            refs.append(AttachmentRef.named(mime, descr))
            flags = (UNDECODABLE,)
            continue
        refs.append(found.ref(descr))
        if all(d.sha256 != found.sha256 for d in data):
            data.append(found)
    return tuple(refs), tuple(data), flags


def _decode(encoded: str) -> bytes:
    """Base64 with line breaks (as senders wrap it) -> bytes; any other character outside the alphabet (an
    anonymised ``****``) is an error rather than skipped. The scan does not copy the text."""
    if _NOT_BASE64.search(encoded):
        raise ValueError("not base64")
    return binascii.a2b_base64(encoded)


def _base64_text(content: Node | None) -> str | None:
    """The base64 text of a RefDoc ``Content``: its ``Base64Container`` child, else its own text."""
    if content is None:
        return None
    container = content.first("Base64Container")
    return c.el_text(container) if container is not None else content.text


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


def v1_parties(node: Node, scope: str, wrappers: tuple[tuple[str, str], ...]) -> tuple[Party, ...]:
    """The v1.x parties (:mod:`mappings.kith.hcp`) of every wrapper element at each ``(path, role)`` under
    ``node``, in that order (a wrapper's ``Relation`` code overrides the role); memoised as :func:`_memo`."""
    found = [(w, role) for path, role in wrappers for w in c.findall(node, path)]
    roles = {id(w): role for w, role in found}

    def read(nodes: list[Node], scope: str) -> tuple[Party, ...]:
        return tuple(p for w in nodes for p in hcp.parties(w, roles[id(w)], scope))

    return _memo([w for w, _ in found], scope, read, ",".join(r for _, r in found)) if found else ()
