"""Record status of KITH reports and result items, as one table (first matching row wins).

Columns (codes as the senders write them in ``V``):

* ``serv_type``: ``ServType`` of the item, else of its parent item, else of the report; Volven code system
  **7309** (``N`` Ny, ``M`` Endring, ``C`` Kansellering, ``A`` Tillegg, ``H`` Historikk). A whole-report ``C``
  counts for every item.
* ``investigation``: ``StatusInvestigation`` of the item, else of its parent item (status of one investigation:
  ``1`` Revidert, ``2`` Foreløpig, ``3`` Endelig, ``4`` Tillegg, ``11`` Signert, ``14`` Undersøkelse slettet,
  ``15`` I prosess). Its Volven code system is not named in the samples or schemas at hand (unverified); the
  meanings are the samples' ``DN`` texts.
* ``report``: the report's ``Status``; Volven code system **7306** (``F`` Endelig rapport, ``P`` Foreløpig,
  ``A`` Tillegg, ``S`` Planlagt).

``ANY`` matches every value, ``NONE`` only an absent one. The result ``None`` means "not a result": a planned
report states what will be examined, not what was found, so it gives no document and no observation of its own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from engine.model import RecordStatus

ANY: Final = "*"
NONE: Final = "-"

_C, _P, _F = RecordStatus.CANCELLED, RecordStatus.PRELIMINARY, RecordStatus.FINAL
_CORR = RecordStatus.CORRECTED

#: (serv_type, investigation, report) -> status; first match wins.
TABLE: Final[tuple[tuple[str, str, str, RecordStatus | None], ...]] = (
    ("C", ANY, ANY, _C),  # cancelled, whatever else it says
    (ANY, "14", ANY, _C),  # investigation deleted
    (ANY, "2", ANY, _P),  # the item's own status wins over the report's
    (ANY, "15", ANY, _P),  # in process
    (ANY, "1", ANY, _CORR),  # revised
    ("M", "3", ANY, _CORR),  # a change that is final is a correction
    ("M", "4", ANY, _CORR),
    ("M", "11", ANY, _CORR),
    (ANY, "3", ANY, _F),
    (ANY, "4", ANY, _F),  # supplement
    (ANY, "11", ANY, _F),  # signed
    (ANY, NONE, "P", _P),  # no own status: a preliminary report's item is preliminary, changed or not
    (ANY, NONE, "S", None),  # planned: not a result
    ("M", NONE, ANY, _CORR),
    (ANY, ANY, ANY, _F),  # new / supplement / history, final or unstated report status, unknown codes
)


@lru_cache(maxsize=512)
def status(serv_type: str | None, investigation: str | None, report: str | None) -> RecordStatus | None:
    """The table's status for these codes (None = not a result); memoised, as the same few triples recur."""
    for row_serv, row_inv, row_rep, result in TABLE:
        if _match(row_serv, serv_type) and _match(row_inv, investigation) and _match(row_rep, report):
            return result
    raise AssertionError("the last row matches everything")  # pragma: no cover


def _match(row: str, value: str | None) -> bool:
    if row == ANY:
        return True
    if row == NONE:
        return value is None
    return row == value
