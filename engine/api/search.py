"""FHIR search parameters: parsed once, checked strictly, applied to rendered resources (pure functions).

Supported on every clinical type (``patient`` is required there): ``code`` (``system|code``, ``|code`` or
``code``; a comma means or), ``date`` (prefixes ``eq ne lt le gt ge``, precision year, month, day or time;
repeated means and), ``status`` (comma: or), ``_sort`` (``date``, ``-date``, ``_lastUpdated``,
``-_lastUpdated``), ``_count`` (1-1000, default 50) and ``_offset`` (paging). A parameter the type does
not support is a 400: a silently ignored filter would return more than the client asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from engine.api.errors import FhirError

__all__ = ["DATE_PATHS", "Search", "parse"]

#: where each type keeps the date ``date`` searches (first present wins)
DATE_PATHS: dict[str, tuple[str, ...]] = {
    "Observation": ("effectiveDateTime", "issued"),
    "DiagnosticReport": ("effectiveDateTime", "issued"),
    "ServiceRequest": ("authoredOn",),
    "Specimen": ("collection.collectedDateTime", "receivedTime"),
    "Condition": ("onsetDateTime", "recordedDate"),
    "DocumentReference": ("date",),
    "Encounter": ("period.start", "period.end"),
    "MedicationStatement": ("effectivePeriod.start", "dateAsserted"),
    "Basic": ("created",),
    "AllergyIntolerance": ("onsetDateTime", "recordedDate"),
    "Procedure": ("performedDateTime",),
}
_COMMON = frozenset({"patient", "_count", "_offset", "_sort"})
_BY_TYPE = {t: _COMMON | {"code", "date", "status"} for t in DATE_PATHS}
_PREFIX = re.compile(r"^(eq|ne|lt|le|gt|ge|sa|eb|ap)?(\d{4}.*)$")
_SORTS = frozenset({"date", "-date", "_lastUpdated", "-_lastUpdated"})
MAX_COUNT = 1000


@dataclass(frozen=True)
class DateFilter:
    prefix: str
    start: datetime
    end: datetime  # exclusive


@dataclass(frozen=True)
class Search:
    patient: str | None = None
    codes: tuple[tuple[str | None, str], ...] = ()
    dates: tuple[DateFilter, ...] = ()
    statuses: frozenset[str] = frozenset()
    sort: str | None = None
    count: int = 50
    offset: int = 0
    extra: dict[str, str] = field(default_factory=dict)


def _bad(name: str, why: str) -> FhirError:
    return FhirError(400, "SEARCH_PARAMETER_INVALID", f"search parameter {name}: {why}")


def _instant(text: str) -> tuple[datetime, datetime]:
    """The interval ``[start, end)`` a FHIR date or dateTime of any precision stands for."""
    try:
        if len(text) == 4:
            y = int(text)
            return datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC)
        if len(text) == 7:
            y, m = int(text[:4]), int(text[5:7])
            end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
            return datetime(y, m, 1, tzinfo=UTC), end
        if len(text) == 10:
            d = date.fromisoformat(text)
            start = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return start, start + timedelta(days=1)
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _bad("date", "not a FHIR date or dateTime") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at, at + timedelta(seconds=1)


def _date(value: str) -> DateFilter:
    m = _PREFIX.match(value)
    if m is None:
        raise _bad("date", "not a FHIR date or dateTime")
    prefix = m.group(1) or "eq"
    if prefix in ("sa", "eb", "ap"):
        raise _bad("date", f"prefix {prefix} is not supported")
    start, end = _instant(m.group(2))
    return DateFilter(prefix, start, end)


def _code(value: str) -> tuple[str | None, str]:
    system, bar, code = value.rpartition("|")
    if not code:
        raise _bad("code", "empty code")
    return (system or None) if bar else None, code


def _int(name: str, value: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError as exc:
        raise _bad(name, "not an integer") from exc
    if not low <= n <= high:
        raise _bad(name, f"must be between {low} and {high}")
    return n


def count(value: str) -> int:
    """A ``_count`` parameter (1 to :data:`MAX_COUNT`)."""
    return _int("_count", value, 1, MAX_COUNT)


def parse(resource_type: str, params: list[tuple[str, str]]) -> Search:
    """The search a query string asks for; raises a 400 :class:`FhirError` for anything unsupported."""
    allowed = _BY_TYPE.get(resource_type)
    if allowed is None:
        raise FhirError(404, "TYPE_NOT_SUPPORTED", f"resource type {resource_type} is not served")
    found: dict[str, Any] = {"codes": [], "dates": [], "statuses": set()}
    seen: set[str] = set()
    for name, value in params:
        if name not in allowed:
            raise _bad(name, f"not supported on {resource_type}")
        if name in ("patient", "_count", "_offset", "_sort") and name in seen:
            raise _bad(name, "given more than once")
        seen.add(name)
        if name == "patient":
            found["patient"] = value.removeprefix("Patient/")
        elif name == "code":
            found["codes"].extend(_code(v) for v in value.split(","))
        elif name == "date":
            found["dates"].append(_date(value))
        elif name == "status":
            found["statuses"].update(v for v in value.split(",") if v)
        elif name == "_sort":
            if value not in _SORTS:
                raise _bad(name, "supported: date, -date, _lastUpdated, -_lastUpdated")
            found["sort"] = value
        elif name == "_count":
            found["count"] = _int(name, value, 1, MAX_COUNT)
        elif name == "_offset":
            found["offset"] = _int(name, value, 0, 10**9)
    if "patient" not in found:
        raise FhirError(400, "SEARCH_PATIENT_REQUIRED", f"a {resource_type} search needs the patient parameter")
    return Search(
        patient=found["patient"],
        codes=tuple(found["codes"]),
        dates=tuple(found["dates"]),
        statuses=frozenset(found["statuses"]),
        sort=found.get("sort"),
        count=found.get("count", 50),
        offset=found.get("offset", 0),
    )


def _path(res: dict[str, Any], dotted: str) -> Any:
    cur: Any = res
    for step in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(step)
    return cur


def when(resource_type: str, res: dict[str, Any]) -> datetime | None:
    """The date a ``date`` search and ``_sort=date`` use for a rendered resource."""
    for dotted in DATE_PATHS.get(resource_type, ()):
        value = _path(res, dotted)
        if isinstance(value, str):
            return _instant(value)[0] if len(value) <= 10 else datetime.fromisoformat(value)
    return None


def _date_ok(at: datetime | None, f: DateFilter) -> bool:
    if at is None:
        return False
    if f.prefix == "eq":
        return f.start <= at < f.end
    if f.prefix == "ne":
        return not f.start <= at < f.end
    if f.prefix == "lt":
        return at < f.start
    if f.prefix == "le":
        return at < f.end
    if f.prefix == "gt":
        return at >= f.end
    return at >= f.start  # ge


def _codes_of(res: dict[str, Any]) -> list[tuple[str | None, str]]:
    concept = res.get("code") or res.get("medicationCodeableConcept") or res.get("type") or {}
    return [(c.get("system"), c.get("code", "")) for c in concept.get("coding", ())]


def _code_ok(res: dict[str, Any], wanted: tuple[tuple[str | None, str], ...]) -> bool:
    have = _codes_of(res)
    return any(code == c and (system is None or system == s) for system, code in wanted for s, c in have)


def matches(resource_type: str, res: dict[str, Any], search: Search) -> bool:
    """Whether a rendered resource meets the search's filters."""
    if search.statuses and res.get("status") not in search.statuses:
        return False
    if search.codes and not _code_ok(res, search.codes):
        return False
    if search.dates:
        at = when(resource_type, res)
        return all(_date_ok(at, f) for f in search.dates)
    return True
