"""The MLLP listener's store look-ups: which contents of a sender's key are stored, which envelopes are committed.

One :class:`StoreLookups` per listener, shared by the publisher (duplicates) and the commit watch
(``ack_after: commit``, enhanced-mode application ACKs). Where the store offers event-loop look-ups
(``keys.async_key_reader()``: PostgreSQL, :mod:`engine.store.keys_async`) both run on the listener's event
loop over that one connection; elsewhere (SQLite, whose look-up is a local file read) on a small thread
pool, off the loop.

A duplicate look-up that fails counts every key as new (``mllp.keys_lookup_failed``, by error type only):
the workers' idempotent store still keeps a resent message to one record. A commit look-up that fails
raises; the commit watch retries it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import structlog

from adapters.base import AsyncKeys, ProcessedKeys

log = structlog.get_logger("adapters.mllp")

#: (envelope_id, ACK code) of one stored content of a key
Seen = tuple[str, str]


class Stored(NamedTuple):
    """What the store knows of one message's key and content hash."""

    hit: Seen | None  # the same content, stored: its envelope and ACK code
    other: str | None  # the envelope of another content stored under the key (a reused control id)


class StoreLookups:
    """See the module docstring."""

    def __init__(self, keys: ProcessedKeys, *, threads: int = 4) -> None:
        self.keys = keys
        make = getattr(keys, "async_key_reader", None)
        self._reader: AsyncKeys | None = make() if callable(make) else None
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="mllp-keys") if self._reader is None else None

    async def stored(self, pairs: Sequence[tuple[str, str]]) -> list[Stored]:
        """For each (dedup key, content hash): what the store knows, in one query; nothing when it fails."""
        try:
            if self._reader is not None:
                found = await self._reader.processed_contents(pairs)
            else:
                found = await asyncio.get_running_loop().run_in_executor(
                    self._pool, self.keys.processed_contents, pairs
                )
        except Exception as exc:  # noqa: BLE001 - the worker's idempotent store still catches duplicates
            log.warning("mllp.keys_lookup_failed", error=type(exc).__name__)
            return [Stored(None, None)] * len(pairs)
        return [Stored(hit, other) for hit, other in found]

    async def commit_outcomes(self, envelope_ids: Sequence[str]) -> dict[str, str | None]:
        """``{envelope_id: None (mapped) or its dead-letter reason code}`` of the committed ones; raises when
        the look-up fails."""
        if self._reader is not None:
            return await self._reader.commit_outcomes(envelope_ids)
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.keys.commit_outcomes, envelope_ids)

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
