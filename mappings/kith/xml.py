"""Hardened XML parsing and envelope unwrapping for KITH / e-helse messages.

* lxml with no entity resolution, no network, no DTD loading, no huge trees, and a size limit;
  any document with a DOCTYPE (XXE, billion laughs) is rejected with ``KITH_DTD_FORBIDDEN``.
* Encodings: UTF-8 and ISO-8859-1, with or without BOM or XML declaration. Bytes that do not fit the
  declaration are read with the charset that fits them, and :func:`parse_document` says so
  (``charset_repaired`` = ``<declared>-><used>``), so text never turns into mojibake (``Ã˜degÃ¥rd``)
  or C1 control characters:

  * declared single-byte (ISO-8859-1/-15, Windows-1252, ASCII) but valid UTF-8 with multi-byte
    sequences -> UTF-8 (such sequences are very unlikely in real Latin-1 text);
  * declared ISO-8859-1/-15 or ASCII with bytes 0x80-0x9F (C1 controls there; Windows-1252's quotes,
    dashes and euro) -> Windows-1252;
  * declared UTF-8, or no declaration, but not valid UTF-8 -> Windows-1252 (ISO-8859-1 where a byte is
    undefined there); a document without a declaration is not flagged (UTF-8 or Latin-1 is the rule);
  * a byte no candidate gives a letter becomes U+FFFD (``+replaced``).
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
_ENCODING = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([A-Za-z0-9._-]+)[\"']")
_SINGLE_BYTE = frozenset({"iso-8859-1", "iso8859-1", "latin1", "latin-1", "iso-8859-15", "iso8859-15", "us-ascii",
                          "ascii", "windows-1252", "cp1252"})
_WINDOWS_1252 = frozenset({"windows-1252", "cp1252"})
_C1_TEXT = re.compile("[\x80-\x9f]")
_C1_BYTES = bytes(range(0x80, 0xA0))


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


@dataclass(frozen=True)
class Parsed:
    """A parsed document and, when its bytes did not fit its declared charset, ``<declared>-><used>``."""

    root: etree._Element
    charset_repaired: str | None = None


def parse_xml(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse ``raw`` safely; raise :class:`ParseError` with a stable code on anything suspicious."""
    return parse_document(raw, max_bytes=max_bytes).root


def parse_document(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Parsed:
    """:func:`parse_xml`, saying whether the charset was repaired (see the module docstring)."""
    if len(raw) > max_bytes:
        raise ParseError(f"document of {len(raw)} bytes exceeds the limit of {max_bytes}", code="KITH_TOO_LARGE")
    data = raw[3:] if raw.startswith(_BOM) else raw
    head = data[:2048].lstrip()
    if not head:
        raise ParseError("empty document", code="KITH_EMPTY")
    prolog = data[:65536]  # a DOCTYPE can only come before the root element; the keywords are case-sensitive
    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
        raise ParseError("a DOCTYPE or ENTITY declaration is not allowed", code="KITH_DTD_FORBIDDEN")
    data, repaired = _fit_declared(data)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        root, repaired = _retry_as_legacy(data, exc)
    tree = root.getroottree()
    if getattr(tree.docinfo, "doctype", None) or tree.docinfo.internalDTD is not None:
        raise ParseError("a DOCTYPE declaration is not allowed", code="KITH_DTD_FORBIDDEN")
    return Parsed(root, repaired)


def _fit_declared(data: bytes) -> tuple[bytes, str | None]:
    """A document declared single-byte whose bytes are UTF-8, or Windows-1252 where ISO-8859-1 is declared:
    the bytes re-declared (or re-encoded) so that the parser reads the letters that were meant."""
    if data.isascii():
        return data, None
    m = _ENCODING.match(data[:1024])
    declared = m.group(2).decode("ascii").lower() if m else ""
    if declared not in _SINGLE_BYTE:
        return data, None
    try:
        data.decode("utf-8")
        return data[:m.start(2)] + b"UTF-8" + data[m.end(2):], f"{declared}->utf-8"  # type: ignore[union-attr]
    except UnicodeDecodeError:
        pass
    if declared in _WINDOWS_1252 or len(data.translate(None, _C1_BYTES)) == len(data):  # no C1 byte
        return data, None
    text, used = _legacy_text(data)
    body = text.encode("utf-8")
    return body[:m.start(2)] + b"UTF-8" + body[m.end(2):], f"{declared}->{used}"  # type: ignore[union-attr]


def _legacy_text(data: bytes) -> tuple[str, str]:
    """Windows-1252 when it decodes, else ISO-8859-1 with the C1 controls replaced by U+FFFD."""
    try:
        return data.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        return _C1_TEXT.sub("\ufffd", data.decode("iso-8859-1")), "iso-8859-1+replaced"


def _retry_as_legacy(data: bytes, exc: etree.XMLSyntaxError) -> tuple[etree._Element, str | None]:
    """Legacy bytes with no declaration, or mislabelled as UTF-8 (seen from real senders): read as
    Windows-1252 (ISO-8859-1 where a byte is undefined there); flagged when UTF-8 was declared."""
    head = data[:2048].lstrip()
    undeclared = not head.startswith(b"<?xml") or (b"encoding" not in head[:200])
    if not (_is_encoding_error(exc) and (undeclared or _UTF8_DECL.match(head))):
        raise ParseError(f"not well-formed XML at line {exc.lineno}", code="KITH_NOT_WELL_FORMED") from None
    text, used = _legacy_text(_DECL.sub(b"", data, count=1))
    try:
        root = etree.fromstring(text.encode("utf-8"), _parser())
    except etree.XMLSyntaxError as exc2:
        raise ParseError(f"not well-formed XML at line {exc2.lineno}", code="KITH_NOT_WELL_FORMED") from None
    return root, None if undeclared else f"utf-8->{used}"


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
