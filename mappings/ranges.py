"""Reference ranges as labs write them -> low and high bounds; one pure function for every mapping.

Accepted shapes (decimal point or comma, optional sign, spaces anywhere between the parts, an optional
unit or word after the numbers):

* two bounds: ``4.3-6.2``, ``4,3 - 6,2``, ``4.3 to 6.2``, ``4.3 til 6.2``, ``4.3–6.2``, ``4.3..6.2``,
  ``-2--1`` -> (low, high); a range whose low is above its high is not a range (no bounds);
* one bound: ``<5``, ``<= 5``, ``≤5`` -> high; ``>10``, ``>=10``, ``≥ 10`` -> low; the comparator is
  kept in :attr:`Range.low_comparator` / :attr:`Range.high_comparator` (``<`` excludes the bound).

Anything else (``neg``, ``see comment``) has no bounds; the caller keeps the text as written.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

__all__ = ["Range", "parse_range"]

_NUM = r"([+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+))"
#: what may follow the numbers: nothing, or a unit/word that starts with neither a digit nor a comparator
_TAIL = r"(?:\s+[^\d\s<>=≤≥.,+-].*|[^\d\s<>=≤≥.,+-][^\d]*)?"
_TWO = re.compile(rf"^\s*{_NUM}\s*(?:-|–|—|\.\.|\s(?:to|til|-)\s)\s*{_NUM}\s*{_TAIL}\s*$", re.IGNORECASE)
_ONE = re.compile(rf"^\s*(<=|>=|≤|≥|<|>)\s*{_NUM}\s*{_TAIL}\s*$")
_COMPARATOR = {"≤": "<=", "≥": ">="}


class Range(NamedTuple):
    """The bounds of one reference range (None: no bound on that side)."""

    low: float | None = None
    high: float | None = None
    low_comparator: str | None = None  # ``>`` or ``>=`` for a one-sided range ``>10``; None for ``a-b``
    high_comparator: str | None = None  # ``<`` or ``<=`` for a one-sided range ``<5``; None for ``a-b``


_NONE = Range()


def _num(text: str) -> float:
    return float(text.replace(",", "."))


@lru_cache(maxsize=4096)
def parse_range(text: str) -> Range:
    """The bounds of the reference range ``text`` (see the module docstring); never raises (cached)."""
    if not text or not any(c.isdigit() for c in text):
        return _NONE
    m = _TWO.match(text)
    if m is not None:
        low, high = _num(m.group(1)), _num(m.group(2))
        return Range(low, high) if low <= high else _NONE
    m = _ONE.match(text)
    if m is None:
        return _NONE
    comp = _COMPARATOR.get(m.group(1), m.group(1))
    bound = _num(m.group(2))
    if comp[0] == "<":
        return Range(high=bound, high_comparator=comp)
    return Range(low=bound, low_comparator=comp)
