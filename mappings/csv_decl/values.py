"""Value parsing for CSV rows: dates (dd.mm.yyyy ...), numbers (decimal comma), key parts."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from engine import ids
from mappings.csv_decl.spec import OSLO


class RowProblem(NamedTuple):
    """Why a row is rejected: a stable code and the (normalised) column name. Never the value."""

    code: str
    column: str

    def reason(self, row: int) -> str:
        return f"{self.code}: row {row} column {self.column}"


class _RowFail(Exception):
    def __init__(self, code: str, column: str) -> None:
        super().__init__(code)
        self.problem = RowProblem(code, column)


def _fmt_parser(fmt: str) -> Callable[[str], datetime | None]:
    if fmt == "iso":
        return lambda s: datetime.fromisoformat(s)
    if "%" in fmt:
        return lambda s: datetime.strptime(s, fmt)
    fixed = {"dd.mm.yyyy": 10, "dd.mm.yyyy HH:MM": 16, "dd.mm.yyyy HH:MM:SS": 19}
    if fmt not in fixed:
        raise ValueError(f"unknown date format {fmt!r}")
    n = fixed[fmt]

    def parse(s: str) -> datetime | None:
        if len(s) != n or s[2] != "." or s[5] != ".":
            return None
        hh, mi, ss = (int(s[11:13]), int(s[14:16]), int(s[17:19]) if n == 19 else 0) if n > 10 else (0, 0, 0)
        return datetime(int(s[6:10]), int(s[3:5]), int(s[0:2]), hh, mi, ss)

    return parse


def make_time_parser(formats: tuple[str, ...], column: str) -> Callable[[str], datetime]:
    """A parser trying ``formats`` in order; naive results are Europe/Oslo. Raises BAD_DATE.

    Exports repeat the same dates a lot, so parsed values are memoised (bounded).
    """
    parsers = [_fmt_parser(f) for f in formats]
    cache: dict[str, datetime] = {}

    def parse(s: str) -> datetime:
        dt = cache.get(s)
        if dt is not None:
            return dt
        for p in parsers:
            try:
                dt = p(s)
            except ValueError:
                continue
            if dt is not None:
                dt = dt if dt.tzinfo else dt.replace(tzinfo=OSLO)
                if len(cache) >= 8192:
                    cache.clear()
                cache[s] = dt
                return dt
        raise _RowFail("BAD_DATE", column)

    return parse


def make_number_parser(decimal_comma: bool, column: str) -> Callable[[str], float]:
    """``12,5`` (decimal comma) or ``12.5``; spaces (also no-break) as thousands separators. Raises BAD_NUMBER."""

    def parse(s: str) -> float:
        try:
            return float(s.replace(",", ".") if decimal_comma else s)
        except ValueError:
            pass
        t = s.replace(" ", "").replace("\xa0", "").replace("\u202f", "")
        try:
            return float(t.replace(",", ".") if decimal_comma else t)
        except ValueError:
            raise _RowFail("BAD_NUMBER", column) from None

    return parse


def key_part(value: str) -> str:
    """A key component; a national number becomes a stable token so keys carry no identity numbers."""
    if len(value) == 11 and value.isdigit() and ids.is_mod11_valid(value):
        return "h:" + hashlib.sha256(value.encode()).hexdigest()[:20]
    return value
