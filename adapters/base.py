"""The adapter contract, in one place.

An adapter receives bytes from a legacy system, builds an :class:`engine.envelope.Envelope`,
publishes it on the bus and hands responsibility back to the sender (ACK, AppRec, file move)
**only after** ``bus.publish`` returned (the broker confirmed). It never maps.

Each adapter kind is a module under ``adapters/`` with:

* ``Settings``: a pydantic model with ``type: Literal["<kind>"]`` and ``extra="forbid"``;
* ``build(name: str, settings: Settings, runtime: AdapterRuntime) -> Adapter``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from engine.bus import Bus


class ProcessedKeys(Protocol):
    """Sender-side duplicate detection (e.g. HL7 app + facility + MSH-10, per content hash), kept in the
    store, and the commit outcome of published envelopes (``engine.store.journal.Store``)."""

    #: per (dedup_key, content_hash): ((envelope_id, ack_code) of that content or None, another content's envelope)
    def processed_contents(
        self, pairs: Sequence[tuple[str, str]]
    ) -> list[tuple[tuple[str, str] | None, str | None]]: ...
    #: {envelope_id: None (mapped) or dead-letter reason code}, for the committed ones
    def commit_outcomes(self, envelope_ids: Sequence[str]) -> dict[str, str | None]: ...
    def remember(self, items: Sequence[tuple[str, str, str, str]]) -> None:  # (dedup_key, envelope_id, ack, hash)
        ...


class AsyncKeys(Protocol):
    """:class:`ProcessedKeys`' look-ups on an event loop (a store may offer them: ``async_key_reader()``)."""

    async def processed_contents(
        self, pairs: Sequence[tuple[str, str]]
    ) -> list[tuple[tuple[str, str] | None, str | None]]: ...
    async def commit_outcomes(self, envelope_ids: Sequence[str]) -> dict[str, str | None]: ...
    async def close(self) -> None: ...


class AdapterRuntime(Protocol):
    bus: Bus
    keys: ProcessedKeys


class Adapter(Protocol):
    name: str

    def check(self) -> None:
        """Raise :class:`engine.errors.ConfigError` when the source cannot be reached."""

    def run(self, stop: threading.Event) -> None:
        """Receive until ``stop`` is set; then stop intake, drain in-flight work and return."""
