"""Shared helpers for the KITH / e-helse mappings: element access, kith.xsd datatypes, times, text.

* Element access goes through :class:`mappings.kith.node.Node` (children indexed by local name, so the
  mixed namespaces of PLO and Henvisning 2.0 and the senders' namespace slips do not matter).
* kith.xsd datatypes: ``CS``/``CV`` (``V``, ``S``, ``DN``, ``OT``) -> :class:`Coding` (``S`` is advisory,
  the code is ``V``; an element without ``V`` has no code, its ``OT``/``DN`` is text only: :func:`uncoded`);
  ``PQ`` (``V`` + ``U``); ``TS`` (``V``: xs:date or xs:dateTime).
* Times: naive source times are Europe/Oslo; a date alone is midnight Oslo time.
* XHTML narrative (``TextResultValue``/``Description`` with ``<div><p>``) -> plain text with line breaks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from engine.model import Attachment, Coding, IdentityLink, MapContext, RecordStatus
from mappings.kith.node import Node
from mappings.kith.status import status as report_status_of

OSLO = ZoneInfo("Europe/Oslo")
OID_VOLVEN = "2.16.578.1.12.4.1.1."
UNSPECIFIED = "UNSPECIFIED"  # the code of a coded field whose source gives no code value
OID_MSG_TYPE = OID_VOLVEN + "8279"  # meldingens funksjon (SVAR_LAB, DIALOG_NOTAT, INNLEGGELSESRAPPORT ...)
_BLOCK = frozenset({"p", "div", "br", "tr", "li", "table", "tbody", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol"})
_SPACES = re.compile(r"[ \t\r\f\v]+")
_WS = re.compile(r"\s+")
_BLANKS = re.compile(r"\n{3,}")
_DATE = re.compile(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")


def find(node: Node | None, rel: str) -> Node | None:
    return None if node is None else node.find(rel)


def findall(node: Node | None, rel: str) -> list[Node]:
    return [] if node is None else node.findall(rel)


def _at(node: Node, rel: str) -> etree._Element | None:
    """The first element at ``rel``; one step goes straight through the child index (the hot path)."""
    return node.first(rel) if rel and "/" not in rel else node.find_el(rel)


def text(node: Node | None, rel: str = "") -> str | None:
    """Stripped text of the first element at ``rel``, or None when absent or empty."""
    return None if node is None else el_text(_at(node, rel))


def attr(node: Node | None, rel: str, name: str = "V") -> str | None:
    """Stripped attribute ``name`` of the first element at ``rel``, or None when absent or empty."""
    return None if node is None else el_attr(_at(node, rel), name)


def el_text(el: etree._Element | None) -> str | None:
    """Stripped text of a raw element (e.g. from :meth:`Node.index`), or None when absent or empty."""
    if el is None:
        return None
    value = el.text
    return None if value is None else value.strip() or None


def el_attr(el: etree._Element | None, name: str = "V") -> str | None:
    """Stripped attribute ``name`` of a raw element, or None when absent or empty."""
    if el is None:
        return None
    value = el.get(name)
    return None if value is None else value.strip() or None


def coding(node: Node | None) -> Coding | None:
    """A CS/CV element as a Coding (code = ``V``); None when it carries no code value."""
    return None if node is None else coding_of(node.el)


def coding_at(node: Node, rel: str) -> Coding | None:
    """:func:`coding` of the first element at ``rel`` (no :class:`Node` made for it)."""
    found = node.find_el(rel)
    return None if found is None else coding_of(found)


def coding_of(el: etree._Element) -> Coding | None:
    """:func:`coding` of a raw element."""
    get = el.get
    v = get("V")
    return _coding(get("S"), v, get("DN"), get("OT")) if v else None


@lru_cache(maxsize=4096)
def _coding(s: str | None, v: str | None, dn: str | None, ot: str | None) -> Coding | None:
    """Memoised: the same codes recur in every message, and a Coding is immutable (validation costs)."""
    s, v, dn, ot = (_strip(x) for x in (s, v, dn, ot))
    if not v:
        return None
    return Coding(system=s, code=v, display=dn or ot)


def uncoded(node: Node | None) -> Coding | None:
    """A coded element with no ``V`` but a text (``OT``, else ``DN``), for a field that needs a Coding: the code
    is :data:`UNSPECIFIED` (never the text) and the text is the display; None when it has a code or no text."""
    if node is None or _strip(node.get("V")):
        return None
    text = _strip(node.get("OT")) or _strip(node.get("DN"))
    return None if text is None else _uncoded(text)


@lru_cache(maxsize=1024)
def _uncoded(text: str) -> Coding:
    return Coding(code=UNSPECIFIED, display=text)


def coding_or_text(node: Node | None) -> Coding | None:
    """:func:`coding`, else :func:`uncoded`."""
    return coding(node) or uncoded(node)


@lru_cache(maxsize=256)
def doc_type(code: str, display: str | None) -> Coding:
    """The document type (``meldingens funksjon``, 8279) as a Coding; memoised like :func:`coding`."""
    return Coding(system=OID_MSG_TYPE, code=code, display=display)


def _strip(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def quantity(node: Node | None) -> tuple[str | None, str | None]:
    """A PQ element as ``(value, unit)`` strings."""
    if node is None:
        return None, None
    return node.get("V"), node.get("U")


def parse_time(value: str | None) -> datetime | None:
    """xs:date / xs:dateTime -> aware datetime (naive = Europe/Oslo); None when unparseable."""
    if not value:
        return None
    return _parse_time(value)


@lru_cache(maxsize=4096)
def _parse_time(value: str) -> datetime | None:
    """Memoised: a message repeats its times (sample, issue, generation) and a datetime is immutable."""
    value = value.strip()
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=OSLO)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=OSLO)


def parse_date(value: str | None) -> date | None:
    """The date at the start of an xs:date / xs:dateTime; senders also write it without zero padding
    (``1991-12-4``), which is the same date. None when unparseable."""
    if not value:
        return None
    match = _DATE.match(value)
    try:
        if match is None:
            return date.fromisoformat(value.strip()[:10])
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def latest(*times: datetime | None) -> datetime | None:
    """The latest of the given times (a correction is generated later than the original, so it wins)."""
    present = [t for t in times if t is not None]
    return max(present) if present else None


def element_text(node: Node | None) -> str | None:
    """Plain text of an element, XHTML blocks as line breaks; None when empty."""
    if node is None:
        return None
    el = node.el
    if len(el) == 0:
        return _tidy(el.text or "")
    parts: list[str] = []
    _walk(el, parts)
    return _tidy("".join(parts))


def _walk(el: etree._Element, parts: list[str]) -> None:
    """Mixed XHTML content: source whitespace is layout, block elements make the line breaks."""
    tag = etree.QName(el).localname if isinstance(el.tag, str) else ""
    block = tag in _BLOCK
    if block:
        parts.append("\n")
    if el.text and isinstance(el.tag, str):
        parts.append(_WS.sub(" ", el.text))
    cells = 0
    for child in el:
        if isinstance(child.tag, str):
            if etree.QName(child).localname in ("td", "th"):
                parts.append(" | " if cells else "")
                cells += 1
            _walk(child, parts)
        if child.tail:
            parts.append(_WS.sub(" ", child.tail))
    if block:
        parts.append("\n")


def clean_text(value: str | None) -> str | None:
    """Plain text with tidy whitespace: lines stripped, runs of blank lines collapsed; None when empty."""
    return _tidy(value) if value else None


def _tidy(value: str) -> str | None:
    lines = [_SPACES.sub(" ", line).strip() for line in value.replace("\r\n", "\n").split("\n")]
    joined = _BLANKS.sub("\n\n", "\n".join(lines)).strip()
    return joined or None


def sections(items: list[tuple[str | None, str | None]]) -> str | None:
    """``[(heading, text), ...]`` -> ``"Heading:\\ntext"`` blocks separated by blank lines."""
    blocks = [f"{h}:\n{t}" if h else t for h, t in items if t]
    return "\n\n".join(blocks) or None


def status_from_servtype(serv_type: str | None, report_status: str | None = None) -> RecordStatus:
    """A whole message's status from ServType (7309) and report Status (7306) by :mod:`mappings.kith.status`;
    a planned one (no result yet) is preliminary here, for the families that have no result items."""
    return report_status_of(serv_type, None, report_status) or RecordStatus.PRELIMINARY


def join(*parts: str | None, sep: str = ", ") -> str | None:
    present = [p for p in parts if p]
    return sep.join(present) or None


def normalise_code(code: str) -> str:
    """ICD-10 / ICPC-2 / ATC codes: no spaces, no dots, upper case (``"C03C A01"`` -> ``C03CA01``)."""
    return code.replace(" ", "").replace(".", "").upper()


@dataclass
class Part:
    """What a family mapping returns for one payload; merged into the MappingResult."""

    records: list[Any] = field(default_factory=list)
    links: tuple[IdentityLink, ...] = ()
    warnings: list[str] = field(default_factory=list)
    #: bytes of the attachments the records refer to (the MsgHead's, decoded once by :mod:`mappings.kith.head`)
    attachments: tuple[Attachment, ...] = ()


def event_time(ctx: MapContext, warnings: list[str], *times: datetime | None) -> datetime:
    """The latest source time; ``ctx.received_at`` (with warning ``KITH_NO_SOURCE_TIME``) when none."""
    found = latest(*times)
    if found is not None:
        return found
    warnings.append("KITH_NO_SOURCE_TIME")
    return ctx.received_at


def unique_key(key: str, seen: set[str]) -> str:
    """``key``, or ``key#2``, ``key#3`` ... when a message repeats it; remembers it in ``seen``."""
    base, n = key, 1
    while key in seen:
        n += 1
        key = f"{base}#{n}"
    seen.add(key)
    return key


def ts(node: Node | None, rel: str) -> datetime | None:
    """A time given either as ``V`` (kith TS) or as element text (MsgHead, Henvisning 2.0)."""
    found = find(node, rel)
    if found is None:
        return None
    return parse_time(found.get("V") or found.text)


def time_or_date(value: str | None) -> tuple[datetime | None, date | None]:
    """xs:dateTime -> ``(aware datetime, None)``; xs:date -> ``(None, date)`` (a date is never made midnight);
    ``(None, None)`` when absent or unparseable."""
    if not value:
        return None, None
    value = value.strip()
    if "T" in value or " " in value:
        return parse_time(value), None
    return None, parse_date(value)


def texts(node: Node | None, rel: str) -> tuple[str, ...] | None:
    """The stripped texts of every element at ``rel`` (XHTML as plain text); None when there is none."""
    found = [t for t in (element_text(n) for n in findall(node, rel)) if t]
    return tuple(found) or None


def uncoded_text(text: str) -> Coding:
    """A Coding for a value the source gives only as text: code :data:`UNSPECIFIED`, the text as display."""
    return _uncoded(text)
