"""HL7 v2 date/time values (DT, TM, TS, DTM) -> timezone-aware datetimes and dates.

``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``; a TS may carry a degree of precision as its
second component (ignored). A value without an offset is Europe/Oslo local time (zoneinfo). Invalid
values read as None: callers fall back or flag, they never raise on a bad time.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:[.,](\d{1,6}))?\s*(?:([+-])(\d{2})(\d{2}))?$")


@lru_cache(maxsize=4096)
def parse_dtm(value: str) -> datetime | None:
    """An aware datetime for an HL7 DTM/TS value (naive -> Europe/Oslo), or None when invalid."""
    m = _DTM.match(value.strip()) if value else None
    if m is None:
        return None
    year, mon, day, hh, mm, ss, frac, sign, oh, om = m.groups()
    try:
        tz = OSLO
        if sign:
            delta = timedelta(hours=int(oh), minutes=int(om))
            if delta >= timedelta(hours=24):
                return None
            tz = timezone(delta if sign == "+" else -delta)  # type: ignore[assignment]
        micro = int((frac or "0").ljust(6, "0")[:6])
        return datetime(
            int(year), int(mon or 1), int(day or 1), int(hh or 0), int(mm or 0), int(ss or 0), micro, tzinfo=tz
        )
    except ValueError:
        return None


def parse_date(value: str) -> date | None:
    """The calendar date of a DT/DTM value as written (no timezone conversion), or None."""
    v = value.strip()[:8] if value else ""
    if len(v) < 8 or not v.isdigit():
        return None
    try:
        return date(int(v[:4]), int(v[4:6]), int(v[6:8]))
    except ValueError:
        return None


def first_time(*values: str) -> datetime | None:
    """The first of ``values`` that parses as a DTM."""
    for v in values:
        if v:
            t = parse_dtm(v)
            if t is not None:
                return t
    return None


def is_date_only(value: str) -> bool:
    """True for a value of exactly eight digits (``YYYYMMDD``, a DT or a TS/DTM given to the day)."""
    v = value.strip()
    return len(v) == 8 and v.isdigit()


def time_or_date(*values: str) -> tuple[datetime | None, date | None]:
    """The first of ``values`` that parses: (datetime, None), or (None, date) for a date-only value
    (a date is never read as midnight)."""
    for v in values:
        if v:
            t = parse_dtm(v)
            if t is not None:
                return (None, t.date()) if len(v) <= 10 and is_date_only(v) else (t, None)
    return None, None
