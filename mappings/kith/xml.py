"""Hardened XML parsing and envelope unwrapping for KITH / e-helse messages.

* lxml with no entity resolution, no network, no DTD loading, no huge trees, and a size limit;
  any document with a DOCTYPE (XXE, billion laughs) is rejected with ``KITH_DTD_FORBIDDEN``.
* Encodings: UTF-8 and ISO-8859-1, with or without BOM or XML declaration (a document with no
  declaration, or one that says UTF-8, that is not valid UTF-8 is read as ISO-8859-1).
* Three shapes: a standalone ``Message``; a ``MsgHead`` v1.2 carrying the message in
  ``Document/RefDoc/Content``; and a MsgHead inside a receiver's own wrapper (NAV ``EI_fellesformat``).

Errors carry codes and line numbers, never document content.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from lxml import etree

from engine.errors import ParseError

NS_MSGHEAD = "http://www.kith.no/xmlstds/msghead/2006-05-24"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
_STANDALONE_ROOTS = frozenset({"Message", "AppRec"})


_LOCAL = threading.local()
_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")
_UTF8_DECL = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']utf-?8[\"']", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    """One hardened parser per thread (lxml parsers are not shared between threads; building one per call costs)."""
    parser: etree.XMLParser | None = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=False,
            collect_ids=False,
        )
        _LOCAL.parser = parser
    return parser


def parse_xml(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse ``raw`` safely; raise :class:`ParseError` with a stable code on anything suspicious."""
    if len(raw) > max_bytes:
        raise ParseError(f"document of {len(raw)} bytes exceeds the limit of {max_bytes}", code="KITH_TOO_LARGE")
    data = raw[3:] if raw.startswith(_BOM) else raw
    head = data[:2048].lstrip()
    if not head:
        raise ParseError("empty document", code="KITH_EMPTY")
    prolog = data[:65536]  # a DOCTYPE can only come before the root element; the keywords are case-sensitive
    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
        raise ParseError("a DOCTYPE or ENTITY declaration is not allowed", code="KITH_DTD_FORBIDDEN")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        root = _retry_as_latin1(data, exc)
    tree = root.getroottree()
    if getattr(tree.docinfo, "doctype", None) or tree.docinfo.internalDTD is not None:
        raise ParseError("a DOCTYPE declaration is not allowed", code="KITH_DTD_FORBIDDEN")
    return root


def _retry_as_latin1(data: bytes, exc: etree.XMLSyntaxError) -> etree._Element:
    """ISO-8859-1 bytes with no declaration, or mislabelled as UTF-8 (seen from real senders): read as Latin-1."""
    head = data[:2048].lstrip()
    undeclared = not head.startswith(b"<?xml") or (b"encoding" not in head[:200])
    if not (_is_encoding_error(exc) and (undeclared or _UTF8_DECL.match(head))):
        raise ParseError(f"not well-formed XML at line {exc.lineno}", code="KITH_NOT_WELL_FORMED") from None
    text = _DECL.sub(b"", data, count=1).decode("iso-8859-1")
    try:
        return etree.fromstring(text.encode("utf-8"), _parser())
    except etree.XMLSyntaxError as exc2:
        raise ParseError(f"not well-formed XML at line {exc2.lineno}", code="KITH_NOT_WELL_FORMED") from None


def _is_encoding_error(exc: etree.XMLSyntaxError) -> bool:
    msg = str(exc).lower()
    return "encoding" in msg or "utf-8" in msg or "bytes" in msg


def local(el: etree._Element) -> str:
    """The element's name without its namespace (``{ns}Name`` -> ``Name``)."""
    return local_tag(el.tag)


#: "{namespace}Local" -> "Local" (etree.QName costs ~1 µs a call, and the adapter's checks and the mappings
#: ask for every child they look at); bounded, so a sender inventing element names cannot grow it
TAG_NAMES: dict[object, str] = {}
_MAX_NAMES = 4096


def local_tag(tag: str) -> str:
    """``{ns}Name`` -> ``Name``."""
    name = TAG_NAMES.get(tag)
    if name is None:
        name = tag[tag.find("}") + 1:]
        if len(TAG_NAMES) < _MAX_NAMES:
            TAG_NAMES[tag] = name
    return name


def tag_name(tag: object) -> str | None:
    """The local name of an element's ``tag``; None for a comment or processing instruction (whose
    ``tag`` is a factory function, not a string)."""
    name = TAG_NAMES.get(tag)
    if name is None and tag.__class__ is str:
        name = local_tag(tag)  # type: ignore[arg-type]
    return name


def first_child(el: etree._Element, name: str) -> etree._Element | None:
    """The first child element of ``el`` called ``name`` (any namespace)."""
    for child in el:
        if tag_name(child.tag) == name:
            return child
    return None


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
    if name in _STANDALONE_ROOTS:  # the common standalone case: no need to search the tree
        return Unwrapped(root, None, (root,), "standalone")
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
