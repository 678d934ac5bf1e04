"""Finding the envelope a batch's commit failed on, so one message never stops a feed.

When the one transaction of a batch fails with anything but an outage (:class:`StoreUnavailable`), the
batch is split in halves and each half is committed in its own transaction, recursively, until the
envelopes the database refuses stand alone. Each of those is dead-lettered on its own (its raw bytes
archived with metadata made storable, so it can be replayed); every other envelope is committed. One
bad envelope in a batch of 500 costs about 2 x log2(500) = 18 small transactions, and only after a
failure: the normal path is the one transaction it always was.

Reason of such a dead letter: the envelope's own code when the mapping had already rejected it, the
code of a :class:`PermanentError` (``TEXT_NOT_STORABLE``), else ``STORE_REJECTED`` naming the
exception's type and the table when known, never a value.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence, TypeVar

import structlog

from engine.errors import PermanentError, StoreUnavailable
from engine.store.bulk import TABLE_ATTR

log = structlog.get_logger("engine.store")
O = TypeVar("O")
S = TypeVar("S")
CODE = "STORE_REJECTED"
_TABLE_IN_SQL = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|COPY|DELETE\s+FROM)\s+([A-Za-z_]\w*)", re.IGNORECASE)


def split(commit: Callable[[Sequence[O]], S], reject: Callable[[O, Exception], S], outcomes: Sequence[O],
          failed: Exception) -> list[S]:
    """What ``commit`` and ``reject`` returned for the parts of ``outcomes``, whose commit raised ``failed``.

    ``commit`` writes a part in one transaction; ``reject`` dead-letters one outcome on its own. An outage
    (:class:`StoreUnavailable`) on the way stops the search: the caller requeues the batch, and what was
    committed already is written again harmlessly on redelivery."""
    log.warning("store.batch_failed", envelopes=len(outcomes), error_type=error_type(failed))
    return _split(commit, reject, outcomes, failed)


def _split(commit: Callable[[Sequence[O]], S], reject: Callable[[O, Exception], S], outcomes: Sequence[O],
           failed: Exception) -> list[S]:
    if len(outcomes) == 1:
        return [reject(outcomes[0], failed)]
    mid = len(outcomes) // 2
    out: list[S] = []
    for part in (outcomes[:mid], outcomes[mid:]):
        try:
            out.append(commit(part))
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the database or a row refused: narrow it down
            out.extend(_split(commit, reject, part, exc))
    return out


def error_type(exc: BaseException) -> str:
    """The type name of the driver's error behind ``exc`` (SQLAlchemy wraps it), else of ``exc``."""
    orig = getattr(exc, "orig", None)
    return type(orig if isinstance(orig, BaseException) else exc).__name__


def table_of(exc: BaseException) -> str | None:
    """The table being written when ``exc`` was raised, when known (never a value)."""
    table = getattr(exc, TABLE_ATTR, None)
    if isinstance(table, str):
        return table
    m = _TABLE_IN_SQL.match(str(getattr(exc, "statement", "") or ""))
    return m.group(1) if m else None


def reason_for(exc: BaseException) -> tuple[str, str]:
    """(code, reason) of an envelope isolated by ``exc``."""
    if isinstance(exc, PermanentError):
        return exc.code, exc.reason
    table = table_of(exc)
    return CODE, f"{CODE}: {error_type(exc)}" + (f" writing {table}" if table else "")
