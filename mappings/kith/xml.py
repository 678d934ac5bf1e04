"""Hardened XML parsing and envelope unwrapping for KITH / e-helse messages.

* lxml with no entity resolution, no network, no DTD loading, no huge trees, and a size limit;
  any document with a DOCTYPE (XXE, billion laughs) is rejected with ``KITH_DTD_FORBIDDEN``.
* Encodings: UTF-8 and ISO-8859-1, with or without BOM or XML declaration (a document with no
  declaration that is not valid UTF-8 is read as ISO-8859-1).
* Three shapes: a standalone ``Message``; a ``MsgHead`` v1.2 carrying the message in
  ``Document/RefDoc/Content``; and a MsgHead inside a receiver's own wrapper (NAV ``EI_fellesformat``).

Errors carry codes and line numbers, never document content.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from engine.errors import ParseError

NS_MSGHEAD = "http://www.kith.no/xmlstds/msghead/2006-05-24"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        collect_ids=False,
    )


def parse_xml(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse ``raw`` safely; raise :class:`ParseError` with a stable code on anything suspicious."""
    if len(raw) > max_bytes:
        raise ParseError(f"document of {len(raw)} bytes exceeds the limit of {max_bytes}", code="KITH_TOO_LARGE")
    data = raw[3:] if raw.startswith(_BOM) else raw
    head = data[:2048].lstrip()
    if not head:
        raise ParseError("empty document", code="KITH_EMPTY")
    if b"<!DOCTYPE" in data[:65536].upper() or b"<!ENTITY" in data[:65536].upper():
        raise ParseError("a DOCTYPE or ENTITY declaration is not allowed", code="KITH_DTD_FORBIDDEN")
    has_decl = head.startswith(b"<?xml")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        if not has_decl and _is_encoding_error(exc):
            try:
                root = etree.fromstring(data.decode("iso-8859-1").encode("utf-8"), _parser())
            except etree.XMLSyntaxError as exc2:
                raise ParseError(f"not well-formed XML at line {exc2.lineno}", code="KITH_NOT_WELL_FORMED") from None
        else:
            raise ParseError(f"not well-formed XML at line {exc.lineno}", code="KITH_NOT_WELL_FORMED") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise ParseError("a DOCTYPE declaration is not allowed", code="KITH_DTD_FORBIDDEN")
    return root


def _is_encoding_error(exc: etree.XMLSyntaxError) -> bool:
    msg = str(exc).lower()
    return "encoding" in msg or "utf-8" in msg or "bytes" in msg


def local(el: etree._Element) -> str:
    return etree.QName(el).localname


@dataclass(frozen=True)
class Unwrapped:
    """The parts of a received document: the MsgHead (if any) and the payload documents in it."""

    root: etree._Element
    msghead: etree._Element | None
    payloads: tuple[etree._Element, ...]
    shape: str  # "standalone" | "msghead" | "wrapped"


def unwrap(root: etree._Element) -> Unwrapped:
    """Find the MsgHead (directly or inside a wrapper) and its XML payloads, or a standalone message."""
    name = local(root)
    if name == "MsgHead":
        return Unwrapped(root, root, _payloads(root), "msghead")
    found = root.find(f".//{{{NS_MSGHEAD}}}MsgHead")
    if found is not None:
        return Unwrapped(root, found, _payloads(found), "wrapped")
    return Unwrapped(root, None, (root,), "standalone")


def _payloads(msghead: etree._Element) -> tuple[etree._Element, ...]:
    out: list[etree._Element] = []
    for refdoc in msghead.iterfind(f"{{{NS_MSGHEAD}}}Document/{{{NS_MSGHEAD}}}RefDoc"):
        content = refdoc.find(f"{{{NS_MSGHEAD}}}Content")
        if content is None:
            continue
        for child in content:
            if isinstance(child.tag, str) and local(child) != "Base64Container":
                out.append(child)
    return tuple(out)
