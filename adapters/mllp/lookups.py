"""The MLLP listener's store look-ups: which contents of a sender's key are stored, which envelopes are committed.

One :class:`StoreLookups` per listener, shared by the publisher (duplicates) and the commit watch
(``ack_after: commit``, enhanced-mode application ACKs), on the listener's event loop: over the store's
own event-loop connection where it has one, else on a small thread pool (:func:`adapters.mllp.paths.async_keys`).

A duplicate look-up that fails counts every key as new (``mllp.keys_lookup_failed``, by error type only):
the workers' idempotent store still keeps a resent message to one record. A commit look-up that fails
raises; the commit watch retries it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import structlog

from adapters.base import ProcessedKeys
from adapters.mllp.paths import async_keys

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
        self._reader = async_keys(keys, threads)

    async def stored(self, pairs: Sequence[tuple[str, str]]) -> list[Stored]:
        """For each (dedup key, content hash): what the store knows, in one query; nothing when it fails
        (or answers for another number of pairs)."""
        try:
            found = await self._reader.processed_contents(pairs)
        except Exception as exc:  # noqa: BLE001 - the worker's idempotent store still catches duplicates
            log.warning("mllp.keys_lookup_failed", error=type(exc).__name__)
            return [Stored(None, None)] * len(pairs)
        if len(found) != len(pairs):
            log.warning("mllp.keys_lookup_failed", error="LengthMismatch")
            return [Stored(None, None)] * len(pairs)
        return [Stored(hit, other) for hit, other in found]

    async def commit_outcomes(self, envelope_ids: Sequence[str]) -> dict[str, str | None]:
        """``{envelope_id: None (mapped) or its dead-letter reason code}`` of the committed ones; raises when
        the look-up fails."""
        return await self._reader.commit_outcomes(envelope_ids)

    async def close(self) -> None:
        await self._reader.close()


__all__ = ["Seen", "StoreLookups", "Stored"]
