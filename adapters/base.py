"""The adapter contract, in one place.

An adapter receives bytes from a legacy system, builds an :class:`engine.envelope.Envelope`,
publishes it on the bus and hands responsibility back to the sender (ACK, AppRec, file move)
**only after** the broker confirmed it (:mod:`adapters.handoff`). It never maps.

Each adapter kind is a package under ``adapters/`` of the same shape:

* ``__init__.py``: the module docstring (what it supports, a config example), ``Settings`` (a pydantic
  model with ``type: Literal["<kind>"]`` and ``extra="forbid"``) and
  ``build(name: str, settings: Settings, runtime: AdapterRuntime) -> Adapter``;
* the rest in modules beside it (``options.py``: the settings' fields; ``adapter.py``: the
  :class:`Adapter`; whatever else the kind needs).

``check()`` writes nothing: it reports what would stop the adapter (a missing or unwritable directory,
a port already taken, a spec that does not fit its sample) as :class:`engine.errors.ConfigError`.
``run(stop)`` creates what it needs (directories) and receives until ``stop`` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

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
    """:class:`ProcessedKeys`' look-ups on an event loop."""

    async def processed_contents(
        self, pairs: Sequence[tuple[str, str]]
    ) -> list[tuple[tuple[str, str] | None, str | None]]: ...
    async def commit_outcomes(self, envelope_ids: Sequence[str]) -> dict[str, str | None]: ...
    async def close(self) -> None: ...


@runtime_checkable
class AsyncKeySource(Protocol):
    """A store that may offer its look-ups on an event loop (PostgreSQL; None where a look-up is a local
    file read that callers run on a thread)."""

    def async_key_reader(self) -> AsyncKeys | None: ...


class AdapterRuntime(Protocol):
    """What an adapter gets from the engine: the bus to publish on, the store's processed keys."""

    @property
    def bus(self) -> Bus: ...
    @property
    def keys(self) -> ProcessedKeys: ...


class Adapter(Protocol):
    """One configured adapter, as the engine runs it (see the module docstring)."""

    name: str

    def check(self) -> None:
        """Raise :class:`engine.errors.ConfigError` when the source cannot be reached or what the adapter
        needs is missing or not writable; write nothing."""

    def run(self, stop: threading.Event) -> None:
        """Create what the adapter needs, receive until ``stop`` is set; then stop intake, drain in-flight
        work and return."""


__all__ = ["Adapter", "AdapterRuntime", "AsyncKeySource", "AsyncKeys", "ProcessedKeys"]
