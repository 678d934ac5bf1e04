"""KITH / e-helse XML messages -> canonical records (entry point ``map_message``).

Shapes (see :mod:`mappings.kith.xml`): standalone ``Message``, MsgHead v1.2 with payloads in
``Document/RefDoc/Content``, and a MsgHead inside a receiver's wrapper. Each payload is dispatched by its
namespace and root element to the module of its family (:mod:`mappings.kith.families`, the table the KITH
file adapter uses too): ``svarrapport``, ``epikrise``, ``henvisning``, ``dialogmelding``, ``plo``,
``rekvisisjon``. An AppRec (a receipt, not clinical) is rejected with ``KITH_NOT_CLINICAL``.

Anything else is rejected with ``KITH_UNSUPPORTED_TYPE`` naming the namespace and root. When a MsgHead
carries several payloads and only some map, the others become warnings ``KITH_PART_UNMAPPED:Document[n]``
(AppRec status 3), as does an attachment whose base64 does not decode (``KITH_ATTACHMENT_UNDECODABLE``). The
MsgHead's attachments are decoded once (:mod:`mappings.kith.head`) into ``MappingResult.attachments``.
``message_type`` is ``MsgInfo/Type/@V`` (MsgHead) or ``Message/Type/@V``;
``source_message_id`` is the MsgId. Example config::

    adapters:
      kith-in: {type: kith-file, mapping: kith, directory: /srv/enjournal/in/kith, outbox: /srv/enjournal/out/apprec}
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from lxml import etree

from engine.errors import EnjournalError, MappingError, UnsupportedMessage, ValidationError
from engine.model import MapContext, MappingResult
from mappings.kith import dialogmelding, epikrise, henvisning, plo, rekvisisjon, svarrapport
from mappings.kith import head as hd
from mappings.kith.common import Part
from mappings.kith.families import mapped_family
from mappings.kith.node import Node
from mappings.kith.xml import DEFAULT_MAX_BYTES, local, parse_xml, unwrap

__all__ = ["map_message"]

#: family name (:mod:`mappings.kith.families`) -> the module that maps it
_MODULES: dict[str, ModuleType] = {
    m.__name__.rsplit(".", 1)[-1]: m for m in (svarrapport, epikrise, henvisning, dialogmelding, plo, rekvisisjon)
}


def family(payload: etree._Element) -> ModuleType:
    """The family module for a payload, or a PermanentError saying why there is none."""
    ns, root = etree.QName(payload).namespace or "", local(payload)
    found = mapped_family(ns, root)
    if found is not None and not found.clinical:
        raise UnsupportedMessage("an AppRec is a receipt, not a clinical message", code="KITH_NOT_CLINICAL")
    if found is None:
        raise UnsupportedMessage(f"no KITH mapping for {{{ns}}}{root}", code="KITH_UNSUPPORTED_TYPE")
    return _MODULES[found.name]


def map_message(raw: bytes, ctx: MapContext) -> MappingResult:
    """Parse, unwrap and map one KITH document; raises PermanentError subclasses with stable codes."""
    root = parse_xml(raw, max_bytes=int(ctx.options.get("max_bytes", DEFAULT_MAX_BYTES)))
    parts = unwrap(root)
    if not parts.payloads:
        raise ValidationError("the MsgHead carries no XML payload", code="KITH_NO_PAYLOAD")
    merged, first_error = Part(), None
    head = hd.Head()
    for i, payload in enumerate(parts.payloads, 1):
        node = Node(payload)  # one child index per element, shared by the head and the family mapping
        try:
            head = _guarded("head", _head, parts.msghead, node, head)
            _merge(merged, _map_one(node, head, ctx))
        except EnjournalError as exc:
            if len(parts.payloads) == 1:
                raise
            first_error = first_error or exc
            merged.warnings.append(f"KITH_PART_UNMAPPED:Document[{i}]")
    if not merged.records and first_error is not None:
        raise first_error
    return MappingResult(
        records=tuple(merged.records),
        links=merged.links,
        attachments=merged.attachments,
        warnings=tuple(dict.fromkeys(merged.warnings + list(head.flags))),
        message_type=head.msg_type,
        source_message_id=head.msg_id,
    )


def _head(msghead: etree._Element | None, payload: Node, prior: hd.Head) -> hd.Head:
    return hd.from_msghead(msghead, payload.el, prior) if msghead is not None else hd.from_standalone(payload)


def _map_one(payload: Node, head: hd.Head, ctx: MapContext) -> Part:
    module = family(payload.el)
    name = module.__name__.rsplit(".", 1)[-1]
    return _guarded(name, module.map_payload, payload, head, ctx)  # type: ignore[no-any-return]


def _guarded(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn``; an unexpected exception (a bug or an input nobody foresaw) becomes a coded MappingError."""
    try:
        return fn(*args)
    except EnjournalError:
        raise
    except Exception as exc:  # noqa: BLE001 - never a traceback to the sender, never a value in the message
        raise MappingError(f"{type(exc).__name__} while mapping {what}", code="KITH_MAPPING_FAILED") from None


def _merge(into: Part, part: Part) -> None:
    seen = {r.key for r in into.records}
    for record in part.records:
        if record.key not in seen:
            seen.add(record.key)
            into.records.append(record)
    links = into.links + part.links
    into.links = links if len(links) < 2 else tuple(dict.fromkeys(links))  # hashing models costs: only when needed
    into.warnings += part.warnings
    if part.attachments:  # the same MsgHead's attachments for every payload: each once
        into.attachments = tuple({a.sha256: a for a in into.attachments + part.attachments}.values())
