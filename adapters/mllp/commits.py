"""Waiting for the workers' commit of published envelopes (``ack_after: commit``, enhanced mode's application ACK).

A connection asks :meth:`CommitWatch.outcome` for an envelope once the broker confirmed it. The watch
collects the ids every connection of the listener waits for and looks them up in one store query every
``interval`` seconds (:meth:`engine.store.journal.Store.commit_outcomes`: an envelope is committed once
``raw_archive`` holds it, and rejected when ``dead_letters`` holds it too, with its reason code), through
the listener's :class:`~adapters.mllp.lookups.StoreLookups`. A query asks for at most ``window`` ids: when
more wait, each query asks for the ones asked least recently, so every waiting id is asked about within
a few ticks even while older ones stay uncommitted. After :data:`IDLE_TICKS` look-ups in a row found
nothing (the workers are behind or down) the pause doubles, up to :data:`MAX_INTERVAL` (never below
``interval``), until one finds something. Nothing is asked while nobody waits, so a listener in
``broker`` mode with original-mode senders never queries.

An outcome that does not come within the caller's timeout raises :class:`TimeoutError`; a failing look-up
is logged once per episode and retried every :attr:`CommitWatch.RETRY_SECONDS` (the waiters' timeouts
bound it).
"""

from __future__ import annotations

import asyncio
import itertools

import structlog

from adapters.mllp.lookups import StoreLookups
from engine.supervise import Backoff

log = structlog.get_logger("adapters.mllp")

#: ids per look-up (PostgreSQL takes them as one array; SQLite chunks again)
WINDOW = 1000
#: empty look-ups in a row before the pause grows, and the longest pause
IDLE_TICKS, MAX_INTERVAL = 20, 0.05


class CommitWatch:
    """See the module docstring."""

    RETRY_SECONDS = 0.5  # between look-ups while they fail

    def __init__(self, lookups: StoreLookups, *, interval: float = 0.005, window: int = WINDOW) -> None:
        self.lookups, self.interval, self.window = lookups, interval, window
        self._idle = Backoff(first=interval, most=max(interval, MAX_INTERVAL))
        #: envelope id -> its waiters, the id asked about least recently first
        self._waiting: dict[str, list[asyncio.Future[str | None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._closed = False

    async def outcome(self, envelope_id: str, timeout: float) -> str | None:
        """None when ``envelope_id`` was committed and mapped, its reason code when it was dead-lettered;
        :class:`TimeoutError` when neither happened within ``timeout`` seconds."""
        fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(envelope_id, []).append(fut)
        self._wake()
        try:
            async with asyncio.timeout(timeout):
                return await fut
        finally:
            if not fut.done() or fut.cancelled():
                self._forget(envelope_id, fut)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _forget(self, envelope_id: str, fut: asyncio.Future[str | None]) -> None:
        futs = self._waiting.get(envelope_id)
        if futs is not None and fut in futs:
            futs.remove(fut)
            if not futs:
                del self._waiting[envelope_id]

    def _wake(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        pause, empty = self.interval, 0
        try:
            while self._waiting and not self._closed:
                await asyncio.sleep(self.RETRY_SECONDS if self._failing else pause)
                found = await self._look_up(self._next_window())
                self._settle(found)
                empty = 0 if found else empty + 1
                pause = self._pause(pause, empty)
        finally:
            self._task = None

    def _pause(self, pause: float, empty: int) -> float:
        """The pause before the next look-up after ``empty`` look-ups in a row found nothing."""
        return self.interval if empty < IDLE_TICKS else self._idle.next(pause, 0.0)

    def _next_window(self) -> list[str]:
        """The ids to ask about now: all of them, or the ``window`` asked least recently (which go to the
        back of the line)."""
        ids = list(itertools.islice(self._waiting, self.window))
        if len(self._waiting) > self.window:
            for envelope_id in ids:
                self._waiting[envelope_id] = self._waiting.pop(envelope_id)
        return ids

    def _settle(self, found: dict[str, str | None]) -> None:
        for envelope_id, reason in found.items():
            for fut in self._waiting.pop(envelope_id, ()):
                if not fut.done():
                    fut.set_result(reason)

    async def _look_up(self, ids: list[str]) -> dict[str, str | None]:
        try:
            found = await self.lookups.commit_outcomes(ids)
        except Exception as exc:  # noqa: BLE001 - retried on the next tick; the waiters' timeouts bound it
            if not self._failing:
                log.warning("mllp.commit_lookup_failed", error=type(exc).__name__, waiting=len(ids))
            self._failing = True
            return {}
        if self._failing:
            log.info("mllp.commit_lookup_recovered")
            self._failing = False
        return found

    async def close(self) -> None:
        """Stop looking up (the shared look-ups are closed by their owner, the listener)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
