"""The processed-key look-up on an event loop (PostgreSQL): what an MLLP listener asks for every message.

:meth:`engine.store.journal.Store.processed_acks` runs on a thread; from an event loop each look-up was a
hand-off to a pool thread and back, and with the pool's threads waking for the GIL it cost the listener
about 12 context switches per message at 300 msg/s. Here the query is one prepared statement on an
autocommit ``psycopg.AsyncConnection`` whose socket the loop's selector watches.

One connection and one cursor, opened on first use with the store's own connection parameters; the
look-ups of concurrent batches run on it one after another. A look-up that fails or takes longer than
``timeout`` drops the connection (the next one reconnects) and raises: the caller treats the keys as new,
and the workers' idempotent writes still keep a resent message to one record.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

import psycopg

from engine.store import schema as s
from engine.store.bulk import pg_select_in_args, pg_select_in_sql

#: the look-up's columns and key column, shared with ``Store.processed_acks``
OUT, BY = ("dedup_key", "ack_code"), ("dedup_key",)
_SQL = pg_select_in_sql(s.processed_messages, OUT, BY)


def acks(rows: Sequence[Sequence[Any]]) -> dict[str, str]:
    """``{dedup_key: ack_code}`` from the look-up's rows."""
    return {str(k): str(a) for k, a in rows}


class AsyncKeyReader:
    """See the module docstring. ``connect_kwargs``: psycopg connection parameters."""

    def __init__(self, connect_kwargs: dict[str, Any], *, timeout: float = 2.0) -> None:
        self._kwargs = {"connect_timeout": max(1, round(timeout)),
                        **{k: v for k, v in connect_kwargs.items() if k != "context"}}
        self.timeout = timeout
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._cur: psycopg.AsyncCursor[Any] | None = None
        self._lock = asyncio.Lock()

    async def processed_acks(self, dedup_keys: Sequence[str]) -> dict[str, str]:
        """The ACK codes already given for any of ``dedup_keys`` (as ``Store.processed_acks``)."""
        keys = list(dedup_keys)
        if not keys:
            return {}
        # one connection runs one query at a time anyway; holding the lock lets the look-ups share a cursor
        # (a cursor per look-up cost about 40 of its 240 µs of CPU)
        async with self._lock:
            cur = await self._cursor()
            try:
                async with asyncio.timeout(self.timeout):
                    await cur.execute(_SQL, pg_select_in_args(BY, keys), prepare=True)
                    rows = await cur.fetchall()
            except BaseException:  # a failed or timed-out query leaves the connection in an unknown state
                await self._drop()
                raise
        return acks(rows)

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
