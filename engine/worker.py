"""The worker: consume envelopes, map them, write one transaction per batch, ack after commit.

* A mapping error is permanent: the envelope is dead-lettered with its stable reason code (in the
  store, in the same transaction as the batch's records, and on the bus's dead-letter queue); its
  raw bytes are archived either way, so it can be replayed once the mapping is fixed.
* An envelope carrying a ``rejection`` was refused by its adapter (an AR, an AppRec status 2, a rejected
  CSV row): it is archived and dead-lettered without mapping, with the rejection's code.
* An envelope delivered more than ``delivery_limit`` times (it keeps killing workers) is dead-lettered
  as ``POISON_MESSAGE``.
* Attachments are checked at the mapping step (:func:`engine.store.attachments.screen`): bytes that do not
  match their sha256, or references that do not match the bytes, make the envelope a dead letter
  (``ATTACHMENT_HASH_MISMATCH``, ``ATTACHMENT_SIZE_MISMATCH``, ``ATTACHMENT_MISSING``); one larger than
  ``max_attachment_bytes`` is not stored and its records are flagged ``ATTACHMENT_TOO_LARGE``.
* A mapped value the journal cannot hold (NUL, longer than its column) makes the envelope a dead letter
  at the mapping step, ``TEXT_NOT_STORABLE``; envelope metadata is made storable (:mod:`engine.store.text`).
* Any other error while storing one envelope dead-letters that envelope alone and commits the rest of
  the batch (:mod:`engine.store.isolate`); the batch is acked only once every part is committed.
* A database or broker outage is transient: retry with tenacity, then requeue the batch.
* Whatever escapes :meth:`Worker.run` closes its consumer first, so the deliveries it held go back to
  the queue (and count toward its delivery limit); the runtime restarts the worker (:mod:`engine.supervise`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from engine import metrics, registry
from engine.bus import Bus, Consumer, Delivery
from engine.envelope import Envelope
from engine.errors import BusUnavailable, PermanentError, StoreUnavailable, TransientError
from engine.outcome import BatchStats, Outcome
from engine.plugin import MapFn
from engine.redact import safe_reason
from engine.store import Store, attachments, text

log = structlog.get_logger(__name__)


@dataclass
class WorkerStats:
    batches: int = 0
    envelopes: int = 0
    dead: int = 0
    versions_new: int = 0
    requeued: int = 0
    #: wall seconds per stage, and ``map_cpu``: the CPU seconds of the map stage (this thread's)
    stage_seconds: dict[str, float] = field(
        default_factory=lambda: {"consume": 0.0, "map": 0.0, "store": 0.0, "ack": 0.0, "map_cpu": 0.0}
    )


class Mapper:
    """Maps one envelope to an :class:`Outcome`; never raises for bad input."""

    def __init__(
        self,
        options_for: Callable[[str], dict[str, Any]] | None = None,
        *,
        max_attachment_bytes: int = attachments.DEFAULT_MAX_BYTES,
    ) -> None:
        self._options_for = options_for or (lambda _name: {})
        self._max_attachment = max_attachment_bytes
        self._fns: dict[str, MapFn] = {}

    def __call__(self, env: Envelope) -> Outcome:
        rejection = env.rejection
        if rejection is not None:
            return Outcome(env, reason_code=rejection.code, reason=safe_reason(str(rejection)))
        try:
            fn = self._fns.get(env.mapping)
            if fn is None:
                fn = self._fns[env.mapping] = registry.resolve_mapping(env.mapping)
            result = fn(env.raw, env.context(self._options_for(env.adapter)))
            if text.suspect(env.raw, result):  # text the journal may not hold: look at all of it
                text.check(result, [rec.content_json() for rec in result.records])
            return Outcome(env, result=attachments.screen(result, self._max_attachment))
        except PermanentError as exc:
            return Outcome(env, reason_code=exc.code, reason=safe_reason(exc.reason))
        except Exception as exc:  # noqa: BLE001 - a mapping bug must not stop the feed
            name = type(exc).__name__
            log.error("mapping.crashed", envelope_id=env.id, error_type=name, adapter=env.adapter)
            return Outcome(
                env, reason_code="MAPPING_CRASH", reason=safe_reason(f"MAPPING_CRASH: {name} in mapping {env.mapping}")
            )


class Worker:
    """One consume -> map -> commit -> ack loop (run one per thread)."""

    def __init__(
        self,
        bus: Bus,
        store: Store,
        mapper: Mapper,
        *,
        batch_size: int = 500,
        batch_wait: float = 0.05,
        prefetch: int = 1000,
        delivery_limit: int = 5,
        name: str = "worker-0",
        store_attempts: int = 5,
    ) -> None:
        self.bus, self.store, self.mapper = bus, store, mapper
        self.batch_size, self.batch_wait, self.prefetch = batch_size, batch_wait, prefetch
        self.delivery_limit = delivery_limit
        self.name = name
        self.stats = WorkerStats()
        self._store_attempts = store_attempts
        #: monotonic time of the last batch handled (``run --until-idle`` waits for workers to go quiet)
        self.last_active = 0.0

    def run(self, stop: threading.Event, *, until_idle: bool = False) -> WorkerStats:
        """Consume until ``stop`` is set (or, with ``until_idle``, until the queue is empty)."""
        consumer: Consumer | None = None
        backoff = 0.2
        try:
            while not stop.is_set():
                try:
                    if consumer is None:
                        consumer = self.bus.consumer(self.prefetch)
                        backoff = 0.2
                    handled = self.step(consumer)
                    if until_idle and handled == 0:
                        break
                except TransientError as exc:
                    log.warning("worker.transient", worker=self.name, code=exc.code)
                    _close(consumer)
                    consumer = None
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:  # also on a crash: what this consumer held goes back to the queue
            _close(consumer)
        return self.stats

    def step(self, consumer: Consumer) -> int:
        """Handle one batch; return how many envelopes it held."""
        t0 = time.perf_counter()
        deliveries = consumer.fetch(self.batch_size, self.batch_wait)
        t1 = time.perf_counter()
        self.stats.stage_seconds["consume"] += t1 - t0
        if not deliveries:
            return 0
        return self.handle(consumer, deliveries, t1)

    def handle(self, consumer: Consumer, deliveries: Sequence[Delivery], t1: float | None = None) -> int:
        """Map, commit and ack ``deliveries`` (fetched from ``consumer``); return how many."""
        t1 = time.perf_counter() if t1 is None else t1
        self.last_active = time.monotonic()
        c1 = time.thread_time()
        outcomes = [self._outcome(d) for d in deliveries]
        t2 = time.perf_counter()
        self.stats.stage_seconds["map_cpu"] += time.thread_time() - c1
        self.stats.stage_seconds["map"] += t2 - t1
        try:
            stats = self._commit(outcomes)
        except StoreUnavailable:
            self.stats.requeued += len(deliveries)
            consumer.requeue(deliveries)
            raise
        t3 = time.perf_counter()
        self.stats.stage_seconds["store"] += t3 - t2
        self._dead_letter_on_bus([o for o in outcomes if o.dead] + stats.rejected)
        consumer.ack(deliveries)
        self.stats.stage_seconds["ack"] += time.perf_counter() - t3
        self._count(stats, _mapped(outcomes, stats), t3 - t2)
        self.last_active = time.monotonic()
        return len(deliveries)

    def _outcome(self, d: Delivery) -> Outcome:
        env = text.storable_envelope(d.envelope)
        if d.delivery_count >= self.delivery_limit:
            return Outcome(
                env,
                reason_code="POISON_MESSAGE",
                reason=f"POISON_MESSAGE: delivered {d.delivery_count} times without a commit",
            )
        return self.mapper(env)

    def _commit(self, outcomes: Sequence[Outcome]) -> BatchStats:
        retry = Retrying(
            retry=retry_if_exception_type(StoreUnavailable),
            stop=stop_after_attempt(self._store_attempts),
            wait=wait_exponential(multiplier=0.2, max=5),
            reraise=True,
        )
        for attempt in retry:
            with attempt:
                return self.store.commit_batch(outcomes)
        raise StoreUnavailable("unreachable")  # pragma: no cover

    def _dead_letter_on_bus(self, dead: Sequence[Outcome]) -> None:
        if not dead:
            return
        for o in dead:
            log.warning(
                "envelope.dead_lettered", envelope_id=o.envelope.id, adapter=o.envelope.adapter, code=o.reason_code
            )
            metrics.dead_lettered(o.envelope.adapter, o.reason_code)
        try:
            self.bus.dead_letter([(o.envelope, o.reason or o.reason_code or "") for o in dead])
        except BusUnavailable:
            log.warning("worker.dead_letter_queue_unavailable", count=len(dead))  # the store has them

    def _count(self, stats: BatchStats, mapped: Counter[str], commit_seconds: float) -> None:
        metrics.batch_committed(mapped, commit_seconds)
        self.stats.batches += 1
        self.stats.envelopes += stats.envelopes
        self.stats.dead += stats.dead_letters
        self.stats.versions_new += stats.versions_new
        log.debug(
            "batch.committed",
            worker=self.name,
            envelopes=stats.envelopes,
            new=stats.versions_new,
            unchanged=stats.versions_unchanged,
            dead=stats.dead_letters,
        )


def _mapped(outcomes: Sequence[Outcome], stats: BatchStats) -> Counter[str]:
    """Envelopes journaled per adapter: the mapped ones, less those the store dead-lettered itself."""
    mapped = Counter(o.envelope.adapter for o in outcomes if not o.dead)
    mapped.subtract(o.envelope.adapter for o in stats.rejected)
    return mapped


def _close(consumer: Consumer | None) -> None:
    if consumer is not None:
        try:
            consumer.close()
        except Exception:  # noqa: BLE001 - closing a consumer whose connection failed may fail too
            pass
