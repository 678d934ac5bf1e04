"""Coverage: which non-empty leaves of a source message a mapping's result represents, and which it drops.

A *leaf* is a non-empty value of the source at a *path* that names its place without indexes: an HL7 v2
component or sub-component (``OBX-5.1``, ``PID-3.4.2``), a KITH XML element's text or attribute
(``Message/ServReport/ResultItem/Analysed/@V``), a CSV cell (its column). Each family says how to read
its leaves and what it declares in ``<mapping package>.coverage`` (:class:`FamilySupport`).

A leaf is *represented* when its value (stripped; also with a decimal comma read as a point, and as a
number) occurs in the text of the result's records, or when its path matches a pattern the family declares
MAPPED (values the mapping transforms: times, status codes, OIDs). A one-character or yes/no style value
counts only through a declaration (it would match anywhere): a MAPPED one, or a COPIED one (a path whose
value the mapping copies whole, where a short value counts when it equals a whole value of the result,
e.g. an abnormal flag ``N`` or a unit ``%``); a longer number must occur as a whole number; a
base64 value counts when its bytes are an attachment of the result (by sha256). A leaf that is not
represented but whose path the family declares IGNORED (routing, transport, schema) counts as *ignored*,
with the declared reason (a declaration never hides what does reach the result). Everything else is
*unmapped*, listed by path with a count.

``share`` is ``represented / (leaves - ignored)``: the part of what should reach the journal that does.

Coverage is a pure function of (raw bytes, context, mapping name, mapping result): :func:`measure`. It is
not computed on the ingest path; :func:`of_envelope` maps the bytes again (an archived envelope) and
measures. A :class:`Coverage` holds paths and counts only, never a value (values are personal data).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, computed_field

from engine import registry
from engine.errors import UnsupportedMessage
from engine.model import MapContext, MappingResult

__all__ = [
    "Coverage",
    "Declarations",
    "FamilySupport",
    "IgnoredPath",
    "PathCount",
    "family",
    "matches",
    "measure",
    "of_envelope",
]

#: values too common to count as represented by their text alone (they would match anywhere)
TRIVIAL = frozenset({"true", "false", "yes", "no", "ja", "nei", "y", "n", "j", "0", "1", "t", "f", "x"})
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")
_SPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"\d+(?:[.,]\d+)?")
_HL7_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})?(\d{2})?(?:\.\d+)?)?(?:[+-]\d{4})?")
_NO_TIME = re.compile(r"(\d{2})\.(\d{2})\.(\d{4})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?")
_B64_MIN = 64  # shorter values are not attachments
_B64_CHARS = re.compile(r"[A-Za-z0-9+/=\s]+")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PathCount(_Frozen):
    """A path and how many leaves at it."""

    path: str
    count: int


class IgnoredPath(_Frozen):
    """A path declared ignored, why, and how many leaves at it."""

    path: str
    reason: str
    count: int


class Coverage(_Frozen):
    """How much of one message's source a mapping result represents (paths and counts, never values)."""

    mapping: str
    leaves: int
    represented: int
    ignored: tuple[IgnoredPath, ...] = ()
    unmapped: tuple[PathCount, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ignored_leaves(self) -> int:
        return sum(p.count for p in self.ignored)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def unmapped_leaves(self) -> int:
        return sum(p.count for p in self.unmapped)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def share(self) -> float:
        """``represented / (leaves - ignored)``; 1.0 when nothing is left to represent."""
        due = self.leaves - self.ignored_leaves
        return round(self.represented / due, 4) if due else 1.0


def matches(pattern: str, path: str) -> bool:
    """Whether ``path`` falls under ``pattern``.

    Patterns: an exact path; ``prefix/*`` (an XML subtree); ``*/tail`` (``tail`` at any depth); an HL7
    position ``SEG``, ``SEG-n`` or ``SEG-n.m``, which covers its components and sub-components.
    """
    if path == pattern:
        return True
    if pattern.endswith("/*"):
        return path.startswith(pattern[:-1])
    if pattern.startswith("*/"):
        tail = pattern[1:]
        return path.endswith(tail) or path == tail[1:]
    if "/" in pattern:
        return False
    return path.startswith(pattern + ("." if "-" in pattern else "-"))


@dataclass(frozen=True)
class Declarations:
    """What a mapping package declares: ``mapped`` patterns (what the mapping makes of them), ``copied``
    patterns (values the mapping copies whole, so a short value counts when it equals a whole value of the
    result) and ``ignored`` patterns (why they are not clinical content)."""

    mapped: Mapping[str, str] = field(default_factory=dict)
    ignored: Mapping[str, str] = field(default_factory=dict)
    copied: Mapping[str, str] = field(default_factory=dict)

    def copied_pattern(self, path: str) -> str | None:
        return next((p for p in self.copied if matches(p, path)), None)

    def mapped_pattern(self, path: str) -> str | None:
        return next((p for p in self.mapped if matches(p, path)), None)

    def ignored_reason(self, path: str) -> str | None:
        return next((r for p, r in self.ignored.items() if matches(p, path)), None)


class FamilySupport(Protocol):
    """The module ``<mapping package>.coverage`` of a mapping family."""

    def leaves(self, raw: bytes, ctx: MapContext) -> Iterable[tuple[str, str]]:
        """Every non-empty (path, value) of ``raw``, as the mapping reads it."""
        ...  # pragma: no cover

    def declarations(self, ctx: MapContext) -> Declarations:
        """What the family declares mapped and ignored (may depend on the options, as a CSV spec)."""
        ...  # pragma: no cover


def family(mapping: str) -> FamilySupport:
    """The coverage support of the mapping named ``mapping``; ``COVERAGE_UNSUPPORTED`` when it has none."""
    plugin = registry.mapping(mapping)
    package = plugin.module
    try:
        module: Any = importlib.import_module(f"{package}.coverage")
    except ModuleNotFoundError:
        raise UnsupportedMessage(f"mapping {plugin.name} declares no coverage", code="COVERAGE_UNSUPPORTED") from None
    support: FamilySupport = module
    return support


def of_envelope(raw: bytes, ctx: MapContext, mapping: str) -> Coverage:
    """Map ``raw`` (an archived envelope's bytes) with ``mapping`` and measure; PermanentErrors of the
    mapping propagate (a rejected message has no result to measure)."""
    result = registry.resolve_mapping(mapping)(raw, ctx)
    return measure(raw, ctx, mapping, result)


def measure(raw: bytes, ctx: MapContext, mapping: str, result: MappingResult) -> Coverage:
    """The :class:`Coverage` of ``result`` over the leaves of ``raw`` (see the module docstring)."""
    support = family(mapping)
    decl = support.declarations(ctx)
    content = _Content.of(result)
    verdicts: dict[str, tuple[str, str | None]] = {}  # path -> (kind, reason): each path is looked up once
    represented = 0
    ignored: Counter[str] = Counter()
    reasons: dict[str, str] = {}
    unmapped: Counter[str] = Counter()
    for path, value in support.leaves(raw, ctx):
        kind, reason = verdicts.get(path) or verdicts.setdefault(path, _declared(decl, path))
        if kind == "mapped" or content.holds(value) or (kind == "copied" and content.whole(value)):
            represented += 1
        elif kind == "ignored":
            ignored[path] += 1
            reasons[path] = reason or ""
        else:
            unmapped[path] += 1
    leaves = represented + sum(ignored.values()) + sum(unmapped.values())
    return Coverage(
        mapping=registry.mapping(mapping).name,
        leaves=leaves,
        represented=represented,
        ignored=tuple(IgnoredPath(path=p, reason=reasons[p], count=n) for p, n in _ordered(ignored)),
        unmapped=tuple(PathCount(path=p, count=n) for p, n in _ordered(unmapped)),
    )


def _declared(decl: Declarations, path: str) -> tuple[str, str | None]:
    if decl.mapped_pattern(path) is not None:
        return "mapped", None
    reason = decl.ignored_reason(path)
    if reason is not None:
        return "ignored", reason
    return ("copied", None) if decl.copied_pattern(path) is not None else ("value", None)


def _ordered(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


@dataclass
class _Content:
    """The text of a result's records, for the substring tests."""

    text: str
    spaced: str  # ``text`` with every run of whitespace one space
    numbers: frozenset[float]
    digests: frozenset[str]
    strings: frozenset[str]
    tokens: frozenset[str]  # every number written in ``text`` (digits, an optional decimal part)

    @classmethod
    def of(cls, result: MappingResult) -> _Content:
        strings: list[str] = []
        numbers: set[float] = set()
        for item in (*result.records, *result.links):
            _collect(item.model_dump(mode="json"), strings, numbers)
        for att in result.attachments:
            strings += [att.content_type]
        strings += [s for s in (result.message_type, result.source_message_id) if s]
        digests = {s for s in strings if len(s) == 64 and all(c in "0123456789abcdef" for c in s)}
        digests |= {hashlib.sha256(att.data).hexdigest() for att in result.attachments}
        text = "\x1f".join(strings)
        tokens = frozenset(_TOKEN.findall(text))
        return cls(text, _SPACE.sub(" ", text), frozenset(numbers), frozenset(digests), frozenset(strings), tokens)

    def whole(self, value: str) -> bool:
        """Whether ``value`` is a whole string or number of the result (for COPIED paths)."""
        value = value.strip()
        if value in self.strings:
            return True
        return bool(_NUMBER.fullmatch(value)) and float(value.replace(",", ".")) in self.numbers

    def holds(self, value: str) -> bool:
        value = value.strip()
        if len(value) <= 1 or value.lower() in TRIVIAL:
            return False
        if _NUMBER.fullmatch(value):
            return self._number(value) or self._time(value)
        if value in self.text or _SPACE.sub(" ", value) in self.spaced or self._time(value):
            return True
        return len(value) >= _B64_MIN and self._attachment(value)

    def _time(self, value: str) -> bool:
        """A time or date written as HL7 (``20240301101500``, offset or fraction after it) or Norwegian
        (``01.03.2024 10:15``) counts when the result writes it in ISO form (``2024-03-01T10:15:00``)."""
        iso = _iso(value)
        return iso is not None and iso in self.text

    def _number(self, value: str) -> bool:
        """A number counts when the result holds it as a number or writes it as a whole number."""
        point = value.replace(",", ".")
        if float(point) in self.numbers:
            return True
        digits = value.lstrip("+-")
        return digits in self.tokens or digits.replace(",", ".") in self.tokens

    def _attachment(self, value: str) -> bool:
        if not self.digests or not _B64_CHARS.fullmatch(value):
            return False
        try:
            data = base64.b64decode(_SPACE.sub("", value), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hashlib.sha256(data).hexdigest() in self.digests


def _iso(value: str) -> str | None:
    """The ISO prefix a date or time is written with in a result (seconds only when the source gives them)."""
    m = _HL7_TIME.fullmatch(value)
    if m:
        year, month, day, hour, minute, second = m.groups()
    else:
        m = _NO_TIME.fullmatch(value)
        if not m:
            return None
        day, month, year, hour, minute, second = m.groups()
    if not ("01" <= month <= "12" and "01" <= day <= "31"):
        return None
    iso = f"{year}-{month}-{day}"
    if hour is not None and minute is not None:
        iso += f"T{hour}:{minute}" + (f":{second}" if second else "")
    return iso


def _collect(value: Any, strings: list[str], numbers: set[float]) -> None:
    """Every string and number in a JSON-like value (numbers also as text)."""
    if isinstance(value, str):
        strings.append(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        numbers.add(float(value))
        strings.append(str(value))
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, strings, numbers)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, strings, numbers)
