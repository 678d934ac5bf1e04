"""Bulk writes and key look-ups at the driver level (no SQL compilation on the hot path).

Rows are tuples in the table's column order. :class:`Bulk` has the semantics of ``INSERT ... ON
CONFLICT DO NOTHING`` and returns how many rows were new; the way it gets there depends on the dialect:

* SQLite, and PostgreSQL below :data:`COPY_FROM` rows: the driver's executemany of ``INSERT ... ON
  CONFLICT DO NOTHING`` (pipelined by psycopg).
* PostgreSQL, optimistic (the normal mode): the rows are made unique on the primary key, one query finds
  the keys already stored (see :func:`select_in`) and only the others are COPYed (binary) straight into
  the table, so every row is written once. Were a concurrent writer to
  commit one of those keys in between, the COPY fails with a unique violation: :class:`Raced` is raised,
  and the caller redoes the whole transaction in the safe mode.
* PostgreSQL, optimistic and blind: ``record_versions`` and ``raw_archive`` (written once per envelope,
  by the worker that commits it) skip the look-up once their look-ups found nothing stored for a few
  batches in a row: a result feed's observations are nearly always new (see :class:`LookupPolicy`). A
  key that was stored after all fails the COPY the same way, the transaction is redone safely, and the
  table goes back to looking up, for twice as many clean batches before it goes blind again. Versions
  that often come back (unchanged ADT^A08 demographics) keep their table looking up. Tables written by
  two writers by design (``processed_messages``: an MLLP listener remembers the keys it answered, the
  worker writes them again with the records) always look up.
* PostgreSQL, safe: COPY into a temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT DO
  NOTHING`` (each row is written twice, but no unique violation can abort the transaction).

Why blind: the optimistic COPY writes each row once, where the staging table writes it twice, and the
look-up of a batch's keys costs CPU in both PostgreSQL and the engine; a blind table saves that look-up
(the figures are in docs/performance-history.md).
"""

from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

try:
    from psycopg.errors import UniqueViolation
except ImportError:  # pragma: no cover - SQLite-only installs

    class UniqueViolation(Exception):  # type: ignore[no-redef]
        """Never raised: there is no PostgreSQL driver."""


Row = tuple[Any, ...]
#: the attribute naming the table an error was raised on (read by engine.store.isolate)
TABLE_ATTR = "enjournal_table"
COPY_FROM = 32  # rows: from here on a COPY is faster than executemany
SQLITE_VARS = 900  # bound variables per SQLite statement (old builds allow 999)


class Raced(Exception):
    """A key was stored already (by a concurrent writer after the look-up, or before a blind COPY);
    redo the transaction safely. ``args``: (table name, whether the COPY was blind)."""


class LookupPolicy:
    """When the optimistic COPY of a table may skip its look-up, learnt per table from what look-ups find.

    A table starts looking up. After ``clean`` look-ups in a row that found no stored key it goes blind;
    a blind COPY that fails on a stored key sends it back to looking up and doubles ``clean`` for that
    table (up to ``most``), so a table where stored keys come back now and then stays cheap to redo.
    Shared by a store's worker threads (updates take a lock; a read may see the state of a moment ago,
    which costs at most one look-up too many or one safe redo)."""

    #: tables a policy may make blind: written once per envelope, by the worker that commits it
    TABLES = frozenset({"record_versions", "raw_archive"})

    def __init__(self, clean: int = 4, most: int = 256, tables: frozenset[str] = TABLES) -> None:
        self._first, self._most, self._tables = clean, most, tables
        self._need: dict[str, int] = {}
        self._streak: dict[str, int] = {}
        self._blind: dict[str, bool] = {}
        self._lock = threading.Lock()

    def blind(self, table: str) -> bool:
        return self._blind.get(table, False)

    def looked_up(self, table: str, found: int) -> None:
        if table not in self._tables:
            return
        with self._lock:
            streak = self._streak.get(table, 0) + 1 if found == 0 else 0
            self._streak[table] = streak
            if streak >= self._need.get(table, self._first):
                self._blind[table] = True

    def collided(self, table: str) -> None:
        with self._lock:
            self._blind[table] = False
            self._streak[table] = 0
            self._need[table] = min(self._need.get(table, self._first) * 2, self._most)


_BINARY_TYPES: tuple[tuple[type[sa.types.TypeEngine[Any]], str], ...] = (
    (sa.LargeBinary, "bytea"),
    (sa.BigInteger, "int8"),
    (sa.Integer, "int4"),
    (sa.String, "text"),
)


@dataclass(frozen=True)
class _TableSql:
    cols: str
    marks: int
    key_at: tuple[int, ...]
    key_of: Callable[[Row], Any]
    copy_types: list[str] | None  # binary COPY types of the columns (None: text COPY)


@functools.cache
def _table_sql(table: sa.Table) -> _TableSql:
    names = [c.name for c in table.columns]
    key_at = tuple(names.index(c.name) for c in table.primary_key.columns)
    types = [next((name for cls, name in _BINARY_TYPES if isinstance(c.type, cls)), None) for c in table.columns]
    copy_types = None if None in types else [str(t) for t in types]
    return _TableSql(", ".join(names), len(names), key_at, operator.itemgetter(*key_at), copy_types)


def _copy_rows(cur: Any, target: str, t: _TableSql, rows: Iterable[Row]) -> None:
    """COPY rows into ``target``: binary when every column type is known (cheaper on both ends: no
    escaping, no hex for bytes, no text parsing on the server)."""
    fmt = " (FORMAT BINARY)" if t.copy_types else ""
    with cur.copy(f"COPY {target} ({t.cols}) FROM STDIN{fmt}") as copy:
        if t.copy_types:
            copy.set_types(t.copy_types)
        for r in rows:
            copy.write_row(r)


def pg_text_array(values: Iterable[str]) -> str:
    """A ``text[]`` literal (one parameter: psycopg's list adaptation is pure Python and much slower)."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def select_in(
    conn: sa.Connection, table: sa.Table, out: Sequence[str], by: Sequence[str], keys: Sequence[Any], where: str = ""
) -> list[Row]:
    """``SELECT out FROM table WHERE (by) IN keys [AND where]``: one statement on PostgreSQL, chunks on SQLite.
    ``keys`` are strings (one ``by`` column) or tuples of strings; ``where`` is constant SQL.

    PostgreSQL gets the keys as ``text[]`` parameters and looks each one up in a LATERAL subquery that
    cannot be flattened (OFFSET 0): an index look-up per key whatever the table's size or statistics.
    A plain join of the arrays let the planner choose a parallel sequential scan and a sort of the
    whole table as soon as it held a few ten thousand rows, many times slower."""
    if not keys:
        return []
    if conn.dialect.name == "postgresql":
        return [
            tuple(r)
            for r in conn.exec_driver_sql(
                pg_select_in_sql(table, tuple(out), tuple(by), where), pg_select_in_args(by, keys)
            )
        ]
    cols = ", ".join(f"t.{c}" for c in out)
    return _sqlite_select_in(conn, table, cols, by, keys, f" AND {where}" if where else "")


@functools.cache
def pg_select_in_sql(table: sa.Table, out: tuple[str, ...], by: tuple[str, ...], where: str = "") -> str:
    """The PostgreSQL statement of :func:`select_in` (made once per shape); its parameters are
    :func:`pg_select_in_args`."""
    cols = ", ".join(f"t.{c}" for c in out)
    extra = f" AND {where}" if where else ""
    k = ", ".join(f"c{i}" for i in range(len(by)))
    on = " AND ".join(f"t.{c} = k.c{i}" for i, c in enumerate(by))
    arrays = ", ".join(["%s::text[]"] * len(by))
    return (
        f"SELECT x.* FROM unnest({arrays}) AS k({k}) CROSS JOIN LATERAL "
        f"(SELECT {cols} FROM {table.name} t WHERE {on}{extra} OFFSET 0) AS x"
    )


def pg_select_in_args(by: Sequence[str], keys: Sequence[Any]) -> tuple[str, ...]:
    parts = [keys] if len(by) == 1 else list(zip(*keys, strict=True))
    return tuple(pg_text_array(p) for p in parts)


def _sqlite_select_in(
    conn: sa.Connection, table: sa.Table, cols: str, by: Sequence[str], keys: Sequence[Any], extra: str
) -> list[Row]:
    out: list[Row] = []
    step = SQLITE_VARS // len(by)
    one = "(" + ",".join("?" * len(by)) + ")" if len(by) > 1 else "?"
    lhs = "(" + ", ".join(f"t.{c}" for c in by) + ")" if len(by) > 1 else f"t.{by[0]}"
    for i in range(0, len(keys), step):
        part = keys[i : i + step]
        marks = ("VALUES " if len(by) > 1 else "") + ",".join([one] * len(part))
        args = tuple(v for k in part for v in k) if len(by) > 1 else tuple(part)
        sql = f"SELECT {cols} FROM {table.name} t WHERE {lhs} IN ({marks}){extra}"
        out.extend(tuple(r) for r in conn.exec_driver_sql(sql, args))
    return out


class Bulk:
    """``INSERT ... ON CONFLICT DO NOTHING`` of whole batches; call it with (conn, table, rows)."""

    def __init__(self, dialect: str, *, optimistic: bool = True, policy: LookupPolicy | None = None) -> None:
        self.pg = dialect == "postgresql"
        self.optimistic = optimistic
        self.policy = policy or LookupPolicy()
        self._mark = "%s" if self.pg else "?"

    def __call__(self, conn: sa.Connection, table: sa.Table, rows: Sequence[Row], *, known_new: bool = False) -> int:
        """``known_new``: the caller looked the (unique) keys up under a lock; skip the look-up. An error
        raised on the way carries the table's name (``enjournal_table``), for a dead letter's reason."""
        if not rows:
            return 0
        try:
            if self.pg and len(rows) >= COPY_FROM:
                if self.optimistic:
                    return _copy_new(conn, table, rows, known_new, self.policy)
                return _copy_staged(conn, table, rows)
            t = _table_sql(table)
            sql = (
                f"INSERT INTO {table.name} ({t.cols}) VALUES ({', '.join([self._mark] * t.marks)}) "
                "ON CONFLICT DO NOTHING"
            )
            return max(conn.exec_driver_sql(sql, list(rows)).rowcount, 0)
        except Exception as exc:
            if not hasattr(exc, TABLE_ATTR):
                try:
                    setattr(exc, TABLE_ATTR, table.name)
                except AttributeError:  # pragma: no cover - an exception type without attributes
                    pass
            raise


def _copy_new(conn: sa.Connection, table: sa.Table, rows: Sequence[Row], known_new: bool, policy: LookupPolicy) -> int:
    """Look up which keys are stored (unless ``known_new`` or the table is blind), COPY the rest straight
    into the table; raise Raced when a key turns out to be stored."""
    t = _table_sql(table)
    fresh: dict[Any, Row] = {}
    for r in rows:
        fresh.setdefault(t.key_of(r), r)
    blind = known_new or policy.blind(table.name)
    if not blind:
        by = [table.columns[i].name for i in t.key_at]
        stored = select_in(conn, table, by, by, list(fresh))
        policy.looked_up(table.name, len(stored))
        for found in stored:
            fresh.pop(found[0] if len(found) == 1 else found, None)
    if not fresh:
        return 0
    cur = conn.connection.cursor()
    try:
        _copy_rows(cur, table.name, t, fresh.values())
    except UniqueViolation:
        if blind and not known_new:
            policy.collided(table.name)
        raise Raced(table.name, blind) from None
    finally:
        cur.close()
    return len(fresh)


def _copy_staged(conn: sa.Connection, table: sa.Table, rows: Sequence[Row]) -> int:
    """COPY into a temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``."""
    t = _table_sql(table)
    stage = f"enjournal_stage_{table.name}"
    cur = conn.connection.cursor()
    try:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        _copy_rows(cur, stage, t, rows)
        cur.execute(f"INSERT INTO {table.name} ({t.cols}) SELECT {t.cols} FROM {stage} ON CONFLICT DO NOTHING")
        inserted = max(cur.rowcount, 0)
        cur.execute(f"TRUNCATE {stage}")
        return inserted
    finally:
        cur.close()
