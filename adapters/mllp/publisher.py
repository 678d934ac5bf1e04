"""Batching publisher of the MLLP listener: many connections, one stream of confirmed batches.

Connections :meth:`Publisher.submit` triaged messages and get an asyncio future that resolves to a
:class:`Receipt`: the ACK code to answer with (AA/AE/AR) and the envelope whose commit decides the
message's outcome; or fails with :class:`engine.errors.BusUnavailable` (then the sender gets no answer
at all). One drain task gathers whatever is queued into a batch (up to ``max_batch``) and processes up
to ``max_inflight`` batches at once:

1. duplicates: a message is a duplicate when its ``dedup_key`` **and its content hash** (the first 32 hex
   digits of the sha256 of its bytes) are in the recent-key cache, in flight in another batch, or known to
   the store (:class:`adapters.mllp.lookups.StoreLookups`); it is answered with the original code and the
   original's envelope, and not published again. The same key with other content is a different
   message: it is published under the same key (its processed row is the key and its own hash), flagged
   with ``attributes["control_id_reused"]`` (the envelope id of the earlier content) when that is known
   before it is published, and logged as ``mllp.control_id_reused`` (ids only) either way. The cache keeps
   the last :attr:`RecentKeys.CONTENTS` contents of each key, so a sender that reuses one control id for
   every message costs no more per message than one that never does. The look-up runs while the batch is
   published (``lookup_budget`` 0, the default), so a database busy with the workers' commits does not
   hold the sender's ACK; with a budget the batch waits that long for it first and a key found in time is
   not published again. A resend published again reaches the workers, whose store writes are idempotent;
2. the rest is published and its confirm awaited, retried (tenacity) while the bus is unavailable for up
   to ``retry_seconds``, on the listener's event loop (:func:`adapters.mllp.paths.publish_path`);
3. after the confirm (counted by the adapter's :class:`adapters.handoff.Handoff`) the futures resolve, and
   the accepted keys are remembered with their content hash in batches (``runtime.keys.remember``) by a
   background task, at most every ``REMEMBER_INTERVAL`` seconds.

A message submitted after :meth:`Publisher.close` fails at once (its sender gets no answer).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_delay, wait_exponential

from adapters.handoff import Handoff
from adapters.hl7_intake.triage import Triage
from adapters.mllp.lookups import Seen, Stored, StoreLookups
from adapters.mllp.paths import PublishPath, publish_path
from engine.envelope import Envelope
from engine.errors import BusUnavailable, EnjournalError

log = structlog.get_logger("adapters.mllp")


#: the attribute a message under a reused control id carries: the envelope id of the earlier content
REUSED = "control_id_reused"


class Receipt(NamedTuple):
    """How a submitted message is answered once published (or known): the ACK code, and the envelope whose
    commit decides its outcome (its own; the original's for a duplicate)."""

    code: str
    envelope_id: str


class Known(NamedTuple):
    """One content of a key the listener answered."""

    content_hash: str
    envelope_id: str
    code: str


class RecentKeys:
    """A bounded LRU of dedup_key -> its last :attr:`CONTENTS` contents, oldest first.

    Bounded in keys (``size``) and in contents per key: the work per message is the same however often a
    sender reuses a control id. A content older than the last few is found in the store instead."""

    CONTENTS = 4

    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[str, tuple[Known, ...]] = OrderedDict()

    def get(self, key: str) -> tuple[Known, ...]:
        """The key's kept contents (empty when unknown); marks the key recently used."""
        contents = self._d.get(key)
        if contents is None:
            return ()
        self._d.move_to_end(key)
        return contents

    def put(self, key: str, content_hash: str, envelope_id: str, code: str) -> None:
        """Keep this content as the key's newest (replacing the same content); drop the oldest beyond the cap."""
        kept = tuple(k for k in self._d.get(key, ()) if k.content_hash != content_hash)
        self._d[key] = (*kept, Known(content_hash, envelope_id, code))[-self.CONTENTS :]
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)


def _find(contents: tuple[Known, ...], content_hash: str) -> Known | None:
    return next((k for k in contents if k.content_hash == content_hash), None)


@dataclass
class Pending:
    triage: Triage
    envelope: Envelope = field(init=False)  # the triaged envelope, or its flagged copy
    #: the original (envelope id, ACK code), when the store knew the content only after it was published
    known: Seen | None = None
    reused: bool = False
    future: asyncio.Future[Receipt] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def __post_init__(self) -> None:
        self.envelope = self.triage.envelope

    @property
    def key(self) -> str | None:
        return self.envelope.dedup_key

    @property
    def content_hash(self) -> str:
        return self.envelope.sha256[:32]


def _settle(fut: asyncio.Future[Receipt], receipt: Receipt | None = None, exc: BaseException | None = None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
        fut.exception()  # mark retrieved: a closed connection may never await it
    else:
        assert receipt is not None
        fut.set_result(receipt)


def _follow(leader: asyncio.Future[Receipt], follower: asyncio.Future[Receipt]) -> None:
    def copy(f: asyncio.Future[Receipt]) -> None:
        exc = f.exception() if not f.cancelled() else BusUnavailable("publish cancelled")
        _settle(follower, None if exc else f.result(), exc)

    leader.add_done_callback(copy)


class Publisher:
    """See the module docstring."""

    REMEMBER_INTERVAL = 0.5  # seconds between writes of accepted keys to the store
    REMEMBER_BATCH = 2000  # ... or sooner when this many are waiting

    def __init__(
        self,
        handoff: Handoff,
        lookups: StoreLookups,
        *,
        max_batch: int = 500,
        max_inflight: int = 4,
        retry_seconds: float = 30.0,
        cache_size: int = 100_000,
        lookup_budget: float = 0.0,
    ) -> None:
        self.handoff, self.lookups, self.keys = handoff, lookups, lookups.keys
        self.max_batch, self.retry_seconds, self.lookup_budget = max_batch, retry_seconds, lookup_budget
        self.cache = RecentKeys(cache_size)
        self._queue: asyncio.Queue[Pending | None] = asyncio.Queue()
        self._slots = asyncio.Semaphore(max_inflight)
        self._inflight: dict[str, dict[str, Pending]] = {}  # dedup_key -> content hash -> its leader
        self._tasks: set[asyncio.Task[None]] = set()
        self._remember: list[tuple[str, str, str, str]] = []
        self._remember_wake = asyncio.Event()
        self._remember_full = asyncio.Event()
        self._closing = False
        self._closed = False  # close() was called: nothing more is taken
        #: set when the listener stops: a publish that failed is not retried any more (no ACK is sent)
        self.stopping = False
        self._threads = max_inflight + 1  # a publish that has to wait for a connection waits on one of them
        self._path: PublishPath | None = None

    def submit(self, triage: Triage) -> asyncio.Future[Receipt]:
        p = Pending(triage)
        if self._closed:  # the listener is stopping: never a future that nobody settles
            _settle(p.future, exc=BusUnavailable("listener stopping"))
        else:
            self._queue.put_nowait(p)
        return p.future

    async def run(self) -> None:
        """Drain the queue into batches until :meth:`close`; then wait for every batch."""
        self._path = path = publish_path(self.handoff.bus, self._threads)
        path.start()
        try:
            await self._drain()
        finally:
            await path.close()

    async def _drain(self) -> None:
        remember = asyncio.create_task(self._remember_loop())
        while True:
            first = await self._queue.get()
            if first is None:
                break
            await self._slots.acquire()  # then take what queued meanwhile: bigger batches under load
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    self._queue.put_nowait(None)
                    break
                batch.append(nxt)
            task = asyncio.create_task(self._process(batch))
            self._tasks.add(task)
            task.add_done_callback(self._done)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._closing = True
        self._remember_wake.set()
        self._remember_full.set()
        await remember

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def close(self) -> None:
        """Stop taking batches after everything submitted so far is processed."""
        self._closed = True
        self._queue.put_nowait(None)

    async def _process(self, batch: list[Pending]) -> None:
        leaders = self._claim(batch)
        to_publish = leaders + [p for p in batch if not p.triage.accepted]
        try:
            to_publish = await self._publish(leaders, to_publish[len(leaders) :])
        except BaseException as exc:
            err = exc if isinstance(exc, EnjournalError) else BusUnavailable("publish failed")
            self.handoff.failed(err, count=len(to_publish))
            for p in to_publish:
                self._release(p)
                _settle(p.future, exc=err)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self.handoff.confirmed(p.envelope for p in to_publish)
        for p in to_publish:
            self._release(p)
            _settle(p.future, self._confirmed(p))
        if self._remember:
            self._remember_wake.set()
            if len(self._remember) >= self.REMEMBER_BATCH:
                self._remember_full.set()

    def _confirmed(self, p: Pending) -> Receipt:
        """The receipt of a published message; an accepted one's key and hash are cached and remembered."""
        key = p.key
        if not p.triage.accepted or not key:
            return Receipt(p.triage.code, p.envelope.id)
        envelope_id, code = p.known or (p.envelope.id, p.triage.code)
        self.cache.put(key, p.content_hash, envelope_id, code)
        if p.known is None:
            self._remember.append((key, envelope_id, code, p.content_hash))
        return Receipt(code, envelope_id)

    async def _publish(self, leaders: list[Pending], rejects: list[Pending]) -> list[Pending]:
        """Drop what the store knows, publish the rest and wait for the confirm; return what was published.

        The store look-up gets ``lookup_budget`` seconds; past that the batch is published without waiting
        for it (a busy database must not hold the sender's ACK) and a content it then finds is answered with
        its original code. Such a resend reaches the workers, whose store writes are idempotent."""
        lookup: asyncio.Task[list[Stored]] | None = None
        if leaders:
            lookup = asyncio.ensure_future(self.lookups.stored([(p.key or "", p.content_hash) for p in leaders]))
            if self.lookup_budget > 0:
                await asyncio.wait({lookup}, timeout=self.lookup_budget)
        if lookup is None or lookup.done():
            published = self._settle_known(leaders, lookup.result() if lookup else []) + rejects
            await self._confirm([p.envelope for p in published])
            return published
        published = leaders + rejects
        await self._confirm([p.envelope for p in published])
        for p, stored in zip(leaders, await lookup, strict=True):
            p.known = stored.hit
            if stored.other is not None:
                self._reused(p, stored.other, published=True)
        return published

    def _claim(self, batch: list[Pending]) -> list[Pending]:
        """Answer cached and in-flight duplicates; register and return the first of each key and content."""
        leaders: list[Pending] = []
        for p in batch:
            key = p.key
            if not p.triage.accepted or key is None:
                continue
            seen = self.cache.get(key)
            flight = self._inflight.get(key) or {}
            if (hit := _find(seen, p.content_hash)) is not None:
                _settle(p.future, Receipt(hit.code, hit.envelope_id))
            elif (lead := flight.get(p.content_hash)) is not None:
                _follow(lead.future, p.future)
            else:
                if seen or flight:
                    earlier = seen[0].envelope_id if seen else next(iter(flight.values())).envelope.id
                    self._reused(p, earlier)
                self._inflight.setdefault(key, {})[p.content_hash] = p
                leaders.append(p)
        return leaders

    def _reused(self, p: Pending, earlier: str, *, published: bool = False) -> None:
        """``p`` carries a control id its sender used before for other content: a message of its own. Flag
        its envelope (unless it is published already) and log it once, with ids only."""
        if p.reused:
            return
        p.reused = True
        if not published:
            p.envelope = p.envelope.model_copy(update={"attributes": {**p.envelope.attributes, REUSED: earlier}})
        log.warning("mllp.control_id_reused", envelope=p.envelope.id, earlier=earlier, flagged=not published)

    def _settle_known(self, leaders: list[Pending], stored: list[Stored]) -> list[Pending]:
        """Answer the leaders whose content the store already knew; flag reused keys; return the rest."""
        fresh: list[Pending] = []
        for p, known in zip(leaders, stored, strict=True):
            if known.hit is None:
                if known.other is not None:
                    self._reused(p, known.other)
                fresh.append(p)
                continue
            self.cache.put(p.key or "", p.content_hash, *known.hit)
            self._release(p)
            _settle(p.future, Receipt(known.hit[1], known.hit[0]))
        return fresh

    def _release(self, p: Pending) -> None:
        flight = self._inflight.get(p.key or "")
        if flight is not None and flight.get(p.content_hash) is p:
            del flight[p.content_hash]
            if not flight:
                del self._inflight[p.key or ""]

    async def _confirm(self, envelopes: list[Envelope]) -> None:
        """Publish and wait for the confirm; republish while the bus is unavailable (``retry_seconds``)."""
        if not envelopes:
            return
        try:
            await self._publish_once(envelopes)  # the usual case, without the retry machinery's cost
            return
        except BusUnavailable:
            if self.stopping:
                raise
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(BusUnavailable),
            stop=self._give_up,
            wait=wait_exponential(multiplier=0.1, max=2.0),
            reraise=True,
        ):
            with attempt:
                await self._publish_once(envelopes)

    async def _publish_once(self, envelopes: list[Envelope]) -> None:
        assert self._path is not None, "publishing before run()"
        await self._path.publish(envelopes)

    def _give_up(self, state: RetryCallState) -> bool:
        """Stop retrying after ``retry_seconds``, or at once when the listener is stopping."""
        return self.stopping or stop_after_delay(self.retry_seconds)(state)

    async def _remember_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._remember_wake.wait()
            if not self._closing and len(self._remember) < self.REMEMBER_BATCH:
                # gather: one write per interval instead of one per ACKed batch keeps the store (and its
                # disk, which the broker's confirms share) out of the ACK path
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._remember_full.wait(), self.REMEMBER_INTERVAL)
            self._remember_wake.clear()
            self._remember_full.clear()
            items, self._remember = self._remember, []
            if items:
                await loop.run_in_executor(None, self._store_keys, items)
            if self._closing and not self._remember:
                return

    def _store_keys(self, items: list[tuple[str, str, str, str]]) -> None:
        try:
            self.keys.remember(items)
        except Exception as exc:  # noqa: BLE001 - best effort; the store dedups again in the worker
            log.warning("mllp.keys_remember_failed", count=len(items), error=type(exc).__name__)
