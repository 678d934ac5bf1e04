"""The processed-key and commit look-ups on an event loop (PostgreSQL): what an MLLP listener asks per message.

:meth:`engine.store.journal.Store.processed_versions` runs on a thread; from an event loop each look-up would
be a hand-off to a pool thread and back, and the pool's threads waking for the GIL cost the listener
context switches on its ACK path. Here the query is one prepared statement on an autocommit
``psycopg.AsyncConnection`` whose socket the loop's selector watches.

Two look-ups, each defined once here and used by the thread and the event-loop versions alike:

* processed keys: every stored (content hash, envelope id, ACK code) of each asked ``dedup_key``
  (:func:`versions`); a key with several hashes is a control id its sender used for different content;
* commit outcomes: which of the asked envelope ids a worker committed, and the dead-letter reason code
  of those it rejected (:func:`outcomes`); ``raw_archive`` and ``dead_letters`` are written in the same
  transaction, so an archived envelope without a dead letter was mapped.

One connection and one cursor per reader, opened on first use with the store's own connection
parameters; the look-ups of concurrent batches run on it one after another. A look-up that fails or takes
longer than ``timeout`` drops the connection (the next one reconnects) and raises: the caller treats the
keys as new, and the workers' idempotent writes still keep a resent message to one record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from engine.envelope import Envelope
from engine.store import schema as s
from engine.store.bulk import pg_select_in_args, pg_select_in_sql, pg_text_array

#: the processed-key look-up's columns and key column, shared with ``Store.processed_versions``
OUT, BY = ("dedup_key", "content_hash", "envelope_id", "ack_code"), ("dedup_key",)
_SQL = pg_select_in_sql(s.processed_messages, OUT, BY)

#: {dedup_key: {content_hash: (envelope_id, ack_code)}}
Versions = dict[str, dict[str, tuple[str, str]]]

#: the commit look-up: (envelope_id, reason_code or NULL) of each archived envelope among the asked ids
OUTCOME_COLS = "r.envelope_id, d.reason_code"
OUTCOME_FROM = "raw_archive r LEFT JOIN dead_letters d ON d.envelope_id = r.envelope_id"
_OUTCOME_SQL = (
    f"SELECT x.* FROM unnest(%s::text[]) AS k(c0) CROSS JOIN LATERAL "
    f"(SELECT {OUTCOME_COLS} FROM {OUTCOME_FROM} WHERE r.envelope_id = k.c0 OFFSET 0) AS x"
)


#: the content look-up: per asked (key, content hash), the stored row of that content and one envelope of
#: another content under the key; both on the primary key, at most one row each however often the key recurs
_CONTENTS_PG = (
    "SELECT hit.envelope_id, hit.ack_code, other.envelope_id "
    "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS k(key, hash, i) "
    "LEFT JOIN LATERAL (SELECT envelope_id, ack_code FROM processed_messages p "
    "WHERE p.dedup_key = k.key AND p.content_hash = k.hash OFFSET 0) hit ON true "
    "LEFT JOIN LATERAL (SELECT envelope_id FROM processed_messages p "
    "WHERE p.dedup_key = k.key AND p.content_hash <> k.hash LIMIT 1) other ON true ORDER BY k.i"
)
#: (what is stored of the same content: (envelope_id, ack_code), or None; an envelope of another content, or None)
Content = tuple[tuple[str, str] | None, str | None]


def contents_sql_sqlite(n: int) -> str:
    """The content look-up for ``n`` pairs on SQLite (parameters: key, hash per pair, in order)."""
    values = ",".join(["(?, ?, ?)"] * n)
    return (
        f"WITH k(i, key, hash) AS (VALUES {values}) "
        "SELECT hit.envelope_id, hit.ack_code, (SELECT p.envelope_id FROM processed_messages p "
        "WHERE p.dedup_key = k.key AND p.content_hash <> k.hash LIMIT 1) "
        "FROM k LEFT JOIN processed_messages hit ON hit.dedup_key = k.key AND hit.content_hash = k.hash "
        "ORDER BY k.i"
    )


def contents_sql_args(pairs: Sequence[tuple[str, str]]) -> tuple[str, tuple[str, str]]:
    """The PostgreSQL content look-up and its two parameters (``text[]`` of keys and of hashes)."""
    return _CONTENTS_PG, (pg_text_array([k for k, _ in pairs]), pg_text_array([h for _, h in pairs]))


def contents(rows: Sequence[Sequence[Any]]) -> list[Content]:
    """The content look-up's rows (one per asked pair, in order) as :data:`Content`."""
    return [((str(e), str(a)) if e is not None else None, str(o) if o is not None else None) for e, a, o in rows]


def content_hash(env: Envelope) -> str:
    """The content hash a processed key is stored with: the first 32 hex digits of the raw bytes' sha256."""
    return env.sha256[:32]


def versions(rows: Sequence[Sequence[Any]]) -> Versions:
    """``{dedup_key: {content_hash: (envelope_id, ack_code)}}`` from the processed-key look-up's rows."""
    out: Versions = {}
    for key, content_hash, envelope_id, ack in rows:
        out.setdefault(str(key), {})[str(content_hash)] = (str(envelope_id), str(ack))
    return out


def outcomes(rows: Sequence[Sequence[Any]]) -> dict[str, str | None]:
    """``{envelope_id: None (mapped) or the dead-letter reason code}`` of the committed envelopes."""
    return {str(e): (str(code) if code is not None else None) for e, code in rows}


def outcome_sql_args(envelope_ids: Sequence[str]) -> tuple[str, tuple[str]]:
    """The PostgreSQL commit look-up and its one parameter (a ``text[]``)."""
    return _OUTCOME_SQL, (pg_text_array(envelope_ids),)


class AsyncKeyReader:
    """See the module docstring. ``connect_kwargs``: psycopg connection parameters."""

    def __init__(self, connect_kwargs: Mapping[str, Any], *, timeout: float = 2.0) -> None:
        self._kwargs = {
            "connect_timeout": max(1, round(timeout)),
            **{k: v for k, v in connect_kwargs.items() if k != "context"},
        }
        self.timeout = timeout
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._cur: psycopg.AsyncCursor[Any] | None = None
        self._lock = asyncio.Lock()

    async def processed_versions(self, dedup_keys: Sequence[str]) -> Versions:
        """Every stored content of any of ``dedup_keys`` (as ``Store.processed_versions``)."""
        keys = list(dedup_keys)
        if not keys:
            return {}
        return versions(await self._query(_SQL, pg_select_in_args(BY, keys)))

    async def processed_contents(self, pairs: Sequence[tuple[str, str]]) -> list[Content]:
        """Per (dedup key, content hash): what is stored (as ``Store.processed_contents``)."""
        if not pairs:
            return []
        return contents(await self._query(*contents_sql_args(pairs)))

    async def commit_outcomes(self, envelope_ids: Sequence[str]) -> dict[str, str | None]:
        """Which of ``envelope_ids`` are committed, and how (as ``Store.commit_outcomes``)."""
        ids = list(envelope_ids)
        if not ids:
            return {}
        return outcomes(await self._query(*outcome_sql_args(ids)))

    async def _query(self, sql: str, args: Sequence[Any]) -> list[Any]:
        # one connection runs one query at a time anyway; holding the lock lets the look-ups share a cursor
        # (a cursor made per look-up is a noticeable part of the look-up's CPU)
        async with self._lock:
            cur = await self._cursor()
            try:
                async with asyncio.timeout(self.timeout):
                    await cur.execute(sql, args, prepare=True)
                    return await cur.fetchall()
            except BaseException:  # a failed or timed-out query leaves the connection in an unknown state
                await self._drop()
                raise

    async def _cursor(self) -> psycopg.AsyncCursor[Any]:
        if self._cur is None or self._conn is None or self._conn.closed:
            await self._drop()
            self._conn = await psycopg.AsyncConnection.connect(autocommit=True, **self._kwargs)
            self._cur = self._conn.cursor()
        return self._cur

    async def _drop(self) -> None:
        conn, self._conn, self._cur = self._conn, None, None
        if conn is None:
            return
        try:
            await conn.close()
        except Exception:  # noqa: BLE001 - it is being dropped because it failed
            pass

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
