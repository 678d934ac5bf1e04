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

What is an outage rather than one envelope's fault (:func:`outage`): the database cannot be reached or
the connection broke, and also a refusal of every write whatever the data: SQLSTATE class 42 (syntax
error or access rule violation: a revoked privilege, a table or a column missing after a bad migration)
and 25006 (a read-only transaction: the store points at a standby). Isolating those would dead-letter
every envelope of every batch; as an outage they are retried, then the batch is requeued, until the
store is fixed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

import sqlalchemy as sa
import structlog

from engine.errors import PermanentError, StoreUnavailable
from engine.store.bulk import TABLE_ATTR

try:
    from psycopg import InterfaceError as _PgInterfaceError
    from psycopg import OperationalError as _PgOperationalError
except ImportError:  # pragma: no cover - SQLite-only installs
    _PgInterfaceError = _PgOperationalError = StoreUnavailable  # type: ignore[assignment,misc]

log = structlog.get_logger("engine.store")
OutcomeT = TypeVar("OutcomeT")
StatsT = TypeVar("StatsT")
CODE = "STORE_REJECTED"
#: SQLSTATEs (prefixes) that refuse every write of the store, not one envelope's data
STORE_WIDE_SQLSTATES = ("42", "25006")
_TABLE_IN_SQL = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|COPY|DELETE\s+FROM)\s+([A-Za-z_]\w*)", re.IGNORECASE)


def split(
    commit: Callable[[Sequence[OutcomeT]], StatsT],
    reject: Callable[[OutcomeT, Exception], StatsT],
    outcomes: Sequence[OutcomeT],
    failed: Exception,
) -> list[StatsT]:
    """What ``commit`` and ``reject`` returned for the parts of ``outcomes``, whose commit raised ``failed``.

    ``commit`` writes a part in one transaction; ``reject`` dead-letters one outcome on its own. An outage
    (:class:`StoreUnavailable`) on the way stops the search: the caller requeues the batch, and what was
    committed already is written again harmlessly on redelivery."""
    log.warning("store.batch_failed", envelopes=len(outcomes), error_type=error_type(failed))
    return _split(commit, reject, outcomes, failed)


def _split(
    commit: Callable[[Sequence[OutcomeT]], StatsT],
    reject: Callable[[OutcomeT, Exception], StatsT],
    outcomes: Sequence[OutcomeT],
    failed: Exception,
) -> list[StatsT]:
    if len(outcomes) == 1:
        return [reject(outcomes[0], failed)]
    mid = len(outcomes) // 2
    out: list[StatsT] = []
    for part in (outcomes[:mid], outcomes[mid:]):
        try:
            out.append(commit(part))
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the database or a row refused: narrow it down
            out.extend(_split(commit, reject, part, exc))
    return out


def outage(exc: BaseException) -> str | None:
    """Why the store cannot take any batch now (an error type), when ``exc`` says so; None when ``exc`` may be
    one envelope's fault (then isolation finds it). The COPY path raises the driver's errors unwrapped."""
    if isinstance(exc, (sa.exc.TimeoutError, sa.exc.DisconnectionError)):  # no pooled connection to be had
        return type(exc).__name__
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return "connection lost"
    driver = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) or isinstance(
        driver, (_PgOperationalError, _PgInterfaceError)
    ):
        return error_type(exc)
    if str(getattr(driver, "sqlstate", None) or "").startswith(STORE_WIDE_SQLSTATES):
        return error_type(exc)
    return None


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
