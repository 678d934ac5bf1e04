"""Result and report status of an ORU as one table: OBR-25 (HL7 table 0123) x OBX-11 (table 0085) x
whether OBX-5 holds a value -> record status (+ flag).

The first row that matches wins (``*``: anything; ``""``: empty or a code the table does not know):

====================  ==============  =========  ===============  ==================
OBR-25 (order)        OBX-11 (result)  OBX-5     status           flag
====================  ==============  =========  ===============  ==================
O I S                 F C A U          empty     preliminary      RESULT_PENDING
``*``                 I O              empty     preliminary      RESULT_PENDING
``*``                 F U              ``*``     final
``*``                 C A              ``*``     corrected
``*``                 P R S I O        ``*``     preliminary
``*``                 X D W N          ``*``     cancelled
O I S                 ""               empty     preliminary      RESULT_PENDING
O I S                 ""               value     preliminary
P R A                 ""               ``*``     preliminary
F                     ""               ``*``     final
C                     ""               ``*``     corrected
X                     ""               ``*``     cancelled
""                    ""               ``*``     final            STATUS_MISSING
====================  ==============  =========  ===============  ==================

A result's own status (OBX-11) wins over its order's: a final result in a preliminary report (OBR-25
``P`` or ``A``, some results still to come) stays final. An order whose results are not there yet
(OBR-25 ``O`` received, ``I`` in the lab, ``S`` scheduled) never makes a final result of an OBX without a
value. The report itself (:func:`report_status`) takes OBR-25 alone: ``O``/``I``/``S`` preliminary with the
flag ``RESULTS_PENDING`` (a requisition registered or planned, no result yet), empty -> final with
``STATUS_MISSING``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from engine.model import RecordStatus

_P, _F, _C, _X = RecordStatus.PRELIMINARY, RecordStatus.FINAL, RecordStatus.CORRECTED, RecordStatus.CANCELLED
ANY = None  # a wildcard cell
OBX11_CODES = frozenset("F C A U P R S I O X D W N".split())
OBR25_CODES = frozenset("O I S P R A F C X".split())
PENDING_ORDER = frozenset({"O", "I", "S"})


@dataclass(frozen=True)
class Row:
    """One row of the table: the cells a case must match and what it gives."""

    obr25: frozenset[str] | None
    obx11: frozenset[str] | None
    has_value: bool | None
    status: RecordStatus
    flag: str | None = None


def _s(codes: str) -> frozenset[str]:
    return frozenset(codes.split()) if codes else frozenset({""})


ROWS: tuple[Row, ...] = (
    Row(_s("O I S"), _s("F C A U"), False, _P, "RESULT_PENDING"),
    Row(ANY, _s("I O"), False, _P, "RESULT_PENDING"),
    Row(ANY, _s("F U"), ANY, _F),
    Row(ANY, _s("C A"), ANY, _C),
    Row(ANY, _s("P R S I O"), ANY, _P),
    Row(ANY, _s("X D W N"), ANY, _X),
    Row(_s("O I S"), _s(""), False, _P, "RESULT_PENDING"),
    Row(_s("O I S"), _s(""), True, _P),
    Row(_s("P R A"), _s(""), ANY, _P),
    Row(_s("F"), _s(""), ANY, _F),
    Row(_s("C"), _s(""), ANY, _C),
    Row(_s("X"), _s(""), ANY, _X),
    Row(_s(""), _s(""), ANY, _F, "STATUS_MISSING"),
)


def _norm(code: str, known: frozenset[str]) -> str:
    c = code.strip().upper()
    return c if c in known else ""


@lru_cache(maxsize=256)
def result_status(obr25: str, obx11: str, has_value: bool) -> tuple[RecordStatus, tuple[str, ...]]:
    """(status, flags) of one OBX by the first matching row of :data:`ROWS` (cached: few combinations)."""
    order, own = _norm(obr25, OBR25_CODES), _norm(obx11, OBX11_CODES)
    for row in ROWS:
        if (
            (row.obr25 is None or order in row.obr25)
            and (row.obx11 is None or own in row.obx11)
            and (row.has_value is None or row.has_value is has_value)
        ):
            return row.status, ((row.flag,) if row.flag else ())
    raise AssertionError("the status table covers every case")  # pragma: no cover - the last row matches all


_REPORT = {"F": _F, "C": _C, "P": _P, "R": _P, "A": _P, "X": _X, "O": _P, "I": _P, "S": _P}


@lru_cache(maxsize=64)
def report_status(obr25: str) -> tuple[RecordStatus, tuple[str, ...]]:
    """(status, flags) of the report an OBR states (see the module docstring)."""
    code = _norm(obr25, OBR25_CODES)
    if not code:
        return _F, ("STATUS_MISSING",)
    return _REPORT[code], (("RESULTS_PENDING",) if code in PENDING_ORDER else ())
