"""How the MLLP listener reaches the bus and the store from its event loop.

* Publishing (:func:`publish_path`): a bus that offers an event-loop publisher (``loop_publisher()``,
  RabbitMQ: :mod:`engine.bus.rabbit_loop`) publishes on the listener's loop with no thread hand-off; any
  other bus takes the batch with its thread-safe ``publish_async``, and a (re)connect that may block runs
  on a thread, off the loop (:class:`ThreadPath`).
* Store look-ups (:func:`async_keys`): a store that offers event-loop look-ups (``async_key_reader()``:
  PostgreSQL, :mod:`engine.store.keys_async`) is asked over that one connection on the loop; elsewhere
  (SQLite, whose look-up is a local file read) the look-ups run on a small thread pool (:class:`ThreadKeys`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, runtime_checkable

from adapters.base import AsyncKeys, AsyncKeySource, ProcessedKeys
from engine.bus import Bus, EventLoopPublisher
from engine.envelope import Envelope
from engine.errors import BusUnavailable, EnjournalError


@runtime_checkable
class LoopPublishing(Protocol):
    """A bus that can publish on the caller's event loop."""

    def loop_publisher(self) -> EventLoopPublisher: ...


class PublishPath(Protocol):
    """The listener's way to publish a batch and wait for its confirm, on its event loop."""

    def start(self) -> None: ...
    async def publish(self, envelopes: Sequence[Envelope]) -> None: ...
    async def close(self) -> None: ...


class ThreadPath:
    """Publishing through the bus's ``publish_async`` (its own I/O thread); connecting runs on ``threads``."""

    def __init__(self, bus: Bus, threads: int) -> None:
        self.bus = bus
        self._io = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mllp-publish")

    def start(self) -> None:
        """Nothing to start: the bus's I/O thread is its own."""

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if self.bus.ready_to_publish():
            future = self._submit(envelopes)  # hands the batch to the bus's I/O thread: no wait
        else:  # (re)connecting can block: not on the event loop
            future = await asyncio.get_running_loop().run_in_executor(self._io, self._submit, envelopes)
        await asyncio.wrap_future(future)

    def _submit(self, envelopes: Sequence[Envelope]) -> Future[None]:
        try:
            return self.bus.publish_async(envelopes)
        except Exception as exc:  # noqa: BLE001 - a bus that raises instead of failing the future
            failed: Future[None] = Future()
            failed.set_exception(exc if isinstance(exc, EnjournalError) else BusUnavailable(type(exc).__name__))
            return failed

    async def close(self) -> None:
        self._io.shutdown(wait=False)


def publish_path(bus: Bus, threads: int) -> PublishPath:
    """The bus's event-loop publisher where it has one, else :class:`ThreadPath`; call on the event loop."""
    if isinstance(bus, LoopPublishing):
        return bus.loop_publisher()
    return ThreadPath(bus, threads)


class ThreadKeys:
    """:class:`adapters.base.ProcessedKeys`' look-ups run on a thread pool, for an event loop."""

    def __init__(self, keys: ProcessedKeys, threads: int) -> None:
        self.keys = keys
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="mllp-keys")

    async def processed_contents(
        self, pairs: Sequence[tuple[str, str]]
    ) -> list[tuple[tuple[str, str] | None, str | None]]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.keys.processed_contents, pairs)

    async def commit_outcomes(self, envelope_ids: Sequence[str]) -> dict[str, str | None]:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.keys.commit_outcomes, envelope_ids)

    async def close(self) -> None:
        self._pool.shutdown(wait=False)


def async_keys(keys: ProcessedKeys, threads: int) -> AsyncKeys:
    """The store's event-loop look-ups where it offers them, else :class:`ThreadKeys`."""
    reader = keys.async_key_reader() if isinstance(keys, AsyncKeySource) else None
    return reader if reader is not None else ThreadKeys(keys, threads)


__all__ = ["LoopPublishing", "PublishPath", "ThreadKeys", "ThreadPath", "async_keys", "publish_path"]
