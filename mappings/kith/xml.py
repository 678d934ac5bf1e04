"""Hardened XML parsing and envelope unwrapping for KITH / e-helse messages.

* lxml with no entity resolution, no network, no DTD loading, no huge trees, and a size limit;
  any document with a DOCTYPE (XXE, billion laughs) is rejected with ``KITH_DTD_FORBIDDEN``.
* Encodings: UTF-8 and ISO-8859-1, with or without BOM or XML declaration. Bytes that do not fit the
  declaration are read with the charset that fits them by the rule every adapter shares
  (:mod:`mappings.charset`), and :func:`parse_document` says so (``charset_repaired`` =
  ``<declared>-><used>``, charsets named as XML declarations name them: ``windows-1252``), so text never
  turns into mojibake (``Ã˜degÃ¥rd``) or C1 control characters:

  * declared single-byte Latin (ISO-8859-1/-15, Windows-1252, ASCII) but valid UTF-8 with multi-byte
    sequences -> UTF-8 (such sequences are very unlikely in real Latin-1 text);
  * declared ISO-8859-x or ASCII with bytes 0x80-0x9F (C1 controls there; Windows-1252's quotes,
    dashes and euro) -> the Windows code page extending it (Windows-1252 for Latin-1);
  * declared UTF-8, or no declaration (UTF-8 by XML's rule), but not valid UTF-8 -> Windows-1252
    (ISO-8859-1 where a byte is undefined there); a document without a declaration is not flagged;
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
from mappings import charset

NS_MSGHEAD = "http://www.kith.no/xmlstds/msghead/2006-05-24"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
_STANDALONE_ROOTS = frozenset({"Message", "AppRec"})


_LOCAL = threading.local()
_ENCODING = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([A-Za-z0-9._-]+)[\"']")
#: starts of documents in UTF-16/32 (BOM, or NUL bytes around the first ``<``): lxml reads those itself
_WIDE = (b"\xff\xfe", b"\xfe\xff", b"\x00", b"<\x00")
_UTF8 = charset.canonical("utf-8")


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
        root, repaired = _retry_refitted(data, exc)
    tree = root.getroottree()
    if getattr(tree.docinfo, "doctype", None) or tree.docinfo.internalDTD is not None:
        raise ParseError("a DOCTYPE declaration is not allowed", code="KITH_DTD_FORBIDDEN")
    return Parsed(root, repaired)


def _fit_declared(data: bytes) -> tuple[bytes, str | None]:
    """Before parsing, a document declared in a single-byte charset (lxml would read its bytes as declared,
    C1 controls and mojibake included) whose bytes do not fit: re-encoded as UTF-8 by the shared rule."""
    if data.isascii():
        return data, None
    declared, m = _declaration(data)
    if declared is None or charset.canonical(declared) not in charset.SINGLE_BYTE:
        return data, None
    return _refitted(data, declared, m is not None)


def _retry_refitted(data: bytes, exc: etree.XMLSyntaxError) -> tuple[etree._Element, str | None]:
    """After lxml refused a document declared UTF-8, or undeclared (UTF-8 by XML's rule): if its bytes are
    not UTF-8 (legacy bytes, seen from real senders), parse it as the shared rule reads them; flagged only
    when UTF-8 was declared. Otherwise it is simply not well-formed."""
    declared, m = _declaration(data)
    if (
        data.isascii()
        or (declared is not None and charset.canonical(declared) != _UTF8)
        or (declared is None and data.startswith(_WIDE))
    ):
        raise _not_well_formed(exc)
    body, flag = _refitted(data, declared or "utf-8", m is not None)
    if body is data:
        raise _not_well_formed(exc)
    try:
        return etree.fromstring(body, _parser()), flag
    except etree.XMLSyntaxError as exc2:
        raise _not_well_formed(exc2) from None


def _declaration(data: bytes) -> tuple[str | None, re.Match[bytes] | None]:
    """The encoding named by the XML declaration (lower case), and the match that found it."""
    m = _ENCODING.match(data[:1024])
    return (m.group(2).decode("ascii").lower(), m) if m else (None, None)


def _refitted(data: bytes, declared: str, flagged: bool) -> tuple[bytes, str | None]:
    """``data`` itself when its bytes fit ``declared`` (:func:`mappings.charset.fits`, cheap), else its text
    by :func:`mappings.charset.decode_checked` as UTF-8, re-declared so, and the flag (when ``flagged``)."""
    if charset.canonical(declared) is None or charset.fits(data, declared):
        return data, None
    d = charset.decode_checked(data, declared)
    body = d.text.encode("utf-8")
    m = _ENCODING.match(body[:1024])
    if m is not None:
        body = body[: m.start(2)] + b"UTF-8" + body[m.end(2) :]
    used = _xml_name(d.codec) + ("+replaced" if d.replaced else "")
    return body, f"{declared}->{used}" if flagged else None


def _xml_name(codec: str) -> str:
    """A Python codec by the name XML declarations use (``cp1252`` -> ``windows-1252``)."""
    return f"windows-{codec[2:]}" if codec.startswith("cp125") else codec


def _not_well_formed(exc: etree.XMLSyntaxError) -> ParseError:
    return ParseError(f"not well-formed XML at line {exc.lineno}", code="KITH_NOT_WELL_FORMED")


def local(el: etree._Element) -> str:
    """The element's name without its namespace (``{ns}Name`` -> ``Name``)."""
    return local_tag(el.tag)


#: "{namespace}Local" -> "Local", cached (etree.QName builds an object per call, and the adapter's checks and
#: the mappings ask for every child they look at); bounded, so a sender inventing element names cannot grow it
TAG_NAMES: dict[object, str] = {}
_MAX_NAMES = 4096


def local_tag(tag: str) -> str:
    """``{ns}Name`` -> ``Name``."""
    name = TAG_NAMES.get(tag)
    if name is None:
        name = tag[tag.find("}") + 1 :]
        if len(TAG_NAMES) < _MAX_NAMES:
            TAG_NAMES[tag] = name
    return name


def tag_name(tag: object) -> str | None:
    """The local name of an element's ``tag``; None for a comment or processing instruction (whose
    ``tag`` is a factory function, not a string)."""
    name = TAG_NAMES.get(tag)
    if name is None and tag.__class__ is str:
        name = local_tag(tag)
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
