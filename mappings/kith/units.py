"""Values, units and reference intervals of Svarrapport results (free text from many lab systems).

* Units (``NumResultValue/@U``): ``10E9/L``, ``10^9 /L``, ``10#9/L``, ``x10*9/l`` are one unit (``10^9/L``);
  ``U="0"`` means no unit; known spellings are unified by the table ``units.tsv`` beside this module
  (``mmol/l`` -> ``mmol/L``, ``IE/L`` -> ``IU/L``), compared without whitespace; anything else is kept with
  its words apart (``mg/L FEU`` stays, a qualifier is part of the unit): runs of whitespace become one space,
  and none is left around ``/``, ``^`` or ``*``.
* Numbers: decimal point or comma (``0,5``); a leading ``<``/``>``/``<=``/``>=`` becomes the comparator;
  ``ArithmeticComp`` ``LT``/``GT``/``LE``/``GE`` likewise.
* Reference intervals (``RefInterval/Descr``, free text): ``3,5 - 11,0`` -> (3.5, 11.0), ``< 0,5`` -> (None, 0.5),
  ``> 60`` -> (60, None), an optional unit after the numbers; anything else is kept as text only.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

_TABLE_FILE = Path(__file__).with_name("units.tsv")
_POWER = re.compile(r"^(?:x|\*)?10(?:\^|e|#|\*\*|\*)(-?\d+)(/.*)?$", re.IGNORECASE)
_NUM = r"(\d+(?:[.,]\d+)?)"
_RANGE = re.compile(rf"^\s*{_NUM}\s*(?:-|–|—|til)\s*{_NUM}\s*(?:[^\d\s<>=].*)?$")
_BOUND = re.compile(rf"^\s*(<=|>=|≤|≥|<|>)\s*{_NUM}\s*(?:[^\d\s<>=].*)?$")
_VALUE = re.compile(r"^\s*(<=|>=|≤|≥|<|>)?\s*([-+]?\d+(?:[.,]\d+)?)\s*$")
_AROUND_OP = re.compile(r"\s*([/^*])\s*")
_COMP = {"LT": "<", "GT": ">", "LE": "<=", "GE": ">=", "≤": "<=", "≥": ">="}


@lru_cache(maxsize=1)
def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in _TABLE_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        alias, _, canonical = line.partition("\t")
        table[alias.strip().lower()] = canonical.strip()
    return table


@lru_cache(maxsize=2048)
def normalise_unit(unit: str | None) -> str | None:
    """One spelling per unit; None for no unit (``""``, ``"0"``)."""
    if unit is None:
        return None
    compact = "".join(unit.split())
    key = compact.lower()
    table = _table()
    if key in table:
        return table[key] or None
    power = _POWER.match(compact)
    if power:
        rest = power.group(2) or ""
        per = table.get(rest[1:].lower(), rest[1:]) if rest else ""
        return f"10^{power.group(1)}" + (f"/{per}" if rest else "")
    return _AROUND_OP.sub(r"\1", " ".join(unit.split())) or None


def parse_number(value: str | None) -> tuple[float | None, str | None]:
    """``"0,5"`` -> (0.5, None); ``"<0.5"`` -> (0.5, "<"); unparseable -> (None, None)."""
    if not value:
        return None, None
    return _parse_number(value)


@lru_cache(maxsize=4096)
def _parse_number(value: str) -> tuple[float | None, str | None]:
    """Memoised: results are mostly short decimals, and the same ones recur."""
    match = _VALUE.match(value)
    if not match:
        return None, None
    comp = match.group(1)
    return float(match.group(2).replace(",", ".")), _COMP.get(comp, comp) if comp else None


def comparator(arith_comp: str | None) -> str | None:
    """``ArithmeticComp/@V`` (LT, GT, LE, GE) -> ``<``, ``>``, ``<=``, ``>=``."""
    return _COMP.get((arith_comp or "").strip().upper())


def parse_range(descr: str | None) -> tuple[float | None, float | None]:
    """Low and high limits of a free-text reference interval (either may be None)."""
    if not descr:
        return None, None
    return _parse_range(descr)


@lru_cache(maxsize=2048)
def _parse_range(descr: str) -> tuple[float | None, float | None]:
    """Memoised: labs repeat the same few reference intervals in every message."""
    match = _RANGE.match(descr)
    if match:
        return _f(match.group(1)), _f(match.group(2))
    match = _BOUND.match(descr)
    if match:
        op, number = match.group(1), _f(match.group(2))
        return (None, number) if op in ("<", "<=", "≤") else (number, None)
    return None, None


def _f(value: str) -> float:
    return float(value.replace(",", "."))
