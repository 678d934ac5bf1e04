"""RabbitMQ bus (pika).

Config example::

    bus:
      kind: rabbitmq
      url: "amqp://guest@127.0.0.1:5672/%2F"   # password from ENJOURNAL_BUS_PASSWORD
      queue_type: quorum                       # or classic
      delivery_limit: 5

* Topology declared by the engine: a durable direct exchange, a durable work queue (classic or
  quorum; quorum with ``x-delivery-limit`` and at-least-once dead-lettering), a dead-letter
  exchange and queue.
* Publishing: persistent messages (the envelope's metadata in the body; envelopes published
  together go in frames of up to ``frame_envelopes``, :mod:`engine.bus.wire`), ``mandatory`` (an
  unroutable message fails its batch), and
  **streaming** publisher confirms: a dedicated I/O thread runs an asynchronous pika connection;
  ``publish`` sends a whole batch and waits once for the (multiple-)acks of all of it.
* Consuming: one blocking connection per worker thread, ``basic_qos(prefetch)``, manual
  multi-acks after the store commit; a frame is unpacked into one delivery per envelope (all with
  the frame's tag) and a worker batch always takes a frame whole, so its ack never settles an
  envelope that was not committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import pika
import structlog
from pika.adapters.select_connection import SelectConnection

from engine.bus import Delivery, wire
from engine.bus.amqp import (
    AMQP_ERRORS,
    Batch,
    Confirms,
    Outgoing,
    connection_params,
    dead_letter_properties,
    declare_topology,
    work_messages,
)
from engine.bus.rabbit_loop import LoopPublisher
from engine.config import RabbitBusConfig
from engine.envelope import Envelope
from engine.errors import BusUnavailable

log = structlog.get_logger(__name__)


class _Publisher(threading.Thread):
    """An I/O thread owning an asynchronous connection with streaming confirms."""

    def __init__(self, cfg: RabbitBusConfig) -> None:
        super().__init__(name="enjournal-publisher", daemon=True)
        self.cfg = cfg
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._conn: SelectConnection | None = None
        self._chan: Any = None
        self._confirms = Confirms()

    # thread side -------------------------------------------------------------------------
    def run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                self._conn = SelectConnection(
                    connection_params(self.cfg),
                    on_open_callback=self._on_open,
                    on_open_error_callback=self._on_open_error,
                    on_close_callback=self._on_closed,
                )
                self._conn.ioloop.start()
            except Exception as exc:  # noqa: BLE001 - any failure means reconnect
                log.warning("bus.publisher_error", error=type(exc).__name__)
            finally:
                if self._conn is not None:
                    try:
                        self._conn.ioloop.close()
                    except Exception:  # noqa: BLE001
                        pass
            self._ready.clear()
            self._confirms.fail_all("CONNECTION_LOST")
            if self._stopping.wait(backoff):
                break
            backoff = min(backoff * 2, 5.0)

    def _on_open(self, conn: SelectConnection) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_open_error(self, conn: SelectConnection, err: Any) -> None:
        log.warning("bus.connect_failed", error=type(err).__name__)
        conn.ioloop.stop()

    def _on_closed(self, conn: SelectConnection, reason: Any) -> None:
        self._chan = None
        conn.ioloop.stop()

    def _on_channel(self, chan: Any) -> None:
        self._chan = chan
        self._confirms = confirms = Confirms()
        chan.add_on_close_callback(self._on_channel_closed)
        chan.add_on_return_callback(confirms.on_return)
        chan.confirm_delivery(confirms.on_confirm)
        self._ready.set()
        log.info("bus.publisher_ready")

    def _on_channel_closed(self, chan: Any, reason: Any) -> None:
        self._chan = None
        self._ready.clear()
        conn = self._conn
        if conn is not None and conn.is_open:
            conn.close()

    def _do_publish(self, messages: Sequence[Outgoing], exchange: str, batch: Batch) -> None:
        self._confirms.publish(self._chan, messages, exchange, batch)

    # caller side -------------------------------------------------------------------------
    def submit(self, messages: Sequence[Outgoing], exchange: str) -> Future[None]:
        """Publish ``messages`` (encoded on the caller's thread, not the I/O thread); the future settles
        when the broker confirmed all of them."""
        fut: Future[None] = Future()
        if not messages:
            fut.set_result(None)
            return fut
        batch = Batch(fut, len(messages))
        conn = self._conn
        if conn is None or not self._ready.is_set():
            batch.fail("NOT_CONNECTED")
            return fut
        try:
            conn.ioloop.add_callback_threadsafe(lambda: self._do_publish(messages, exchange, batch))
        except Exception:  # noqa: BLE001 - loop closed under us
            batch.fail("NOT_CONNECTED")
        return fut

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stopping.set()
        conn = self._conn
        if conn is not None:
            try:
                conn.ioloop.add_callback_threadsafe(lambda: conn.close() if conn.is_open else None)
            except Exception:  # noqa: BLE001
                pass
        self.join(timeout=5)


class RabbitBus:
    """RabbitMQ behind the :class:`engine.bus.Bus` interface."""

    def __init__(self, cfg: RabbitBusConfig, *, connect_timeout: float = 10.0) -> None:
        self.cfg = cfg
        self._connect_timeout = connect_timeout
        self._publisher: _Publisher | None = None
        self._plock = threading.Lock()

    def _blocking(self) -> pika.BlockingConnection:
        try:
            return pika.BlockingConnection(connection_params(self.cfg))
        except AMQP_ERRORS as exc:
            raise BusUnavailable(f"cannot reach RabbitMQ ({type(exc).__name__})") from None

    def declare(self) -> None:
        conn = self._blocking()
        try:
            declare_topology(conn.channel(), self.cfg)
        finally:
            conn.close()

    def check(self) -> None:
        self._blocking().close()

    def _pub(self) -> _Publisher:
        with self._plock:
            if self._publisher is None or not self._publisher.is_alive():
                self._publisher = _Publisher(self.cfg)
                self._publisher.start()
            pub = self._publisher
        pub.wait_ready(self._connect_timeout)
        return pub

    def ready_to_publish(self) -> bool:
        """True when :meth:`publish_async` will not wait for a connection."""
        pub = self._publisher
        return pub is not None and pub.is_alive() and pub.wait_ready(0)

    def loop_publisher(self) -> LoopPublisher:
        """A publisher for the calling event loop (:mod:`engine.bus.rabbit_loop`): the same messages and
        confirms as :meth:`publish_async`, without the I/O thread."""
        return LoopPublisher(self.cfg, connect_timeout=self._connect_timeout)

    def publish_async(self, envelopes: Sequence[Envelope], *, framed: bool = True) -> Future[None]:
        return self._pub().submit(work_messages(envelopes, self.cfg, framed), self.cfg.exchange)

    def publish(self, envelopes: Sequence[Envelope], timeout: float | None = None, *, framed: bool = True) -> None:
        fut = self.publish_async(envelopes, framed=framed)
        try:
            fut.result(timeout or self.cfg.confirm_timeout)
        except TimeoutError:
            raise BusUnavailable("publisher confirms timed out") from None

    def dead_letter(self, items: Sequence[tuple[Envelope, str]]) -> None:
        messages = [(e.id, e.raw, dead_letter_properties(e, {"x-enjournal-reason": r})) for e, r in items]
        fut = self._pub().submit(messages, self.cfg.dead_letter_exchange)
        try:
            fut.result(self.cfg.confirm_timeout)
        except TimeoutError:
            raise BusUnavailable("dead-letter confirms timed out") from None

    def consumer(self, prefetch: int = 1000) -> RabbitConsumer:
        return RabbitConsumer(self, prefetch)

    def depth(self) -> dict[str, int]:
        """Ready messages on the work and dead-letter queues (not those delivered and unacknowledged), and
        how many consumers the work queue has (0 while messages wait: no worker is taking them)."""
        conn = self._blocking()
        try:
            ch = conn.channel()
            work_queue = ch.queue_declare(self.cfg.queue, passive=True).method
            work, consumers = work_queue.message_count, work_queue.consumer_count
            dead = ch.queue_declare(self.cfg.dead_letter_queue, passive=True).method.message_count
        except AMQP_ERRORS as exc:
            raise BusUnavailable(f"cannot read queue depth ({type(exc).__name__})") from None
        finally:
            if conn.is_open:
                conn.close()
        return {"work": int(work), "dead": int(dead), "consumers": int(consumers)}

    def purge(self) -> None:
        """Empty the work and dead-letter queues (tests and benchmarks only)."""
        conn = self._blocking()
        try:
            ch = conn.channel()
            ch.queue_purge(self.cfg.queue)
            ch.queue_purge(self.cfg.dead_letter_queue)
        finally:
            conn.close()

    def delete_topology(self) -> None:
        conn = self._blocking()
        try:
            ch = conn.channel()
            for q in (self.cfg.queue, self.cfg.dead_letter_queue):
                ch.queue_delete(q)
            for x in (self.cfg.exchange, self.cfg.dead_letter_exchange):
                ch.exchange_delete(x)
        finally:
            conn.close()

    def close(self) -> None:
        with self._plock:
            if self._publisher is not None:
                self._publisher.stop()
                self._publisher = None


class RabbitConsumer:
    """A blocking consumer with prefetch and multi-acks; one per worker thread."""

    #: bytes of message bodies a consumer may hold unacknowledged, and at most an eighth of that per batch:
    #: a 500-row CSV chunk is ~100 KB, so a count-only prefetch of 1000 would buffer 100 MB per consumer
    PREFETCH_BYTES = 32 * 1024 * 1024

    def __init__(self, bus: RabbitBus, prefetch: int, prefetch_bytes: int = PREFETCH_BYTES) -> None:
        self._conn = bus._blocking()
        self._max_prefetch = prefetch
        # until the first messages show their size, assume frames as large as they may be (a frame of
        # 256 KiB times a prefetch of 1000 would be 256 MB); _fit_prefetch raises it once it knows
        self._prefetch = max(1, min(prefetch, prefetch_bytes // bus.cfg.frame_bytes))
        self._budget, self._avg, self._buffered = prefetch_bytes, 0.0, 0
        try:
            self._chan = self._conn.channel()
            self._chan.basic_qos(prefetch_count=self._prefetch)
            self._buffer: list[Delivery] = []
            self._split: list[tuple[int, list[Envelope]]] = []
            self._bus = bus
            self._chan.basic_consume(bus.cfg.queue, self._on_message, auto_ack=False)
        except AMQP_ERRORS as exc:
            raise BusUnavailable(f"cannot consume ({type(exc).__name__})") from None

    def _on_message(self, ch: Any, method: Any, props: Any, body: bytes) -> None:
        headers = props.headers or {}
        count = int(headers.get("x-delivery-count", 0) or 0)
        tag, redelivered = method.delivery_tag, bool(method.redelivered)
        envs = wire.decode_all(props.content_type, headers, body)
        if len(envs) > 1 and (redelivered or count):
            self._split.append((tag, envs))
            return
        for env in envs:
            self._buffer.append(Delivery(env, tag, redelivered, count))
            self._buffered += len(env.raw)
        self._avg = len(body) if not self._avg else 0.95 * self._avg + 0.05 * len(body)

    def _fit_prefetch(self) -> None:
        """Lower (or restore) the prefetch count so the unacknowledged bodies stay within the byte budget."""
        if not self._avg:
            return
        want = max(1, min(self._max_prefetch, int(self._budget // self._avg)))
        if abs(want - self._prefetch) * 4 > self._prefetch:
            self._chan.basic_qos(prefetch_count=want)
            self._prefetch = want

    def _take(self, max_items: int) -> list[Delivery]:
        """The first deliveries of the buffer: at most ``max_items`` and an eighth of the byte budget, but
        always whole AMQP messages (a frame's envelopes share one tag, and its ack settles all of them)."""
        buf, n, size, cap = self._buffer, 0, 0, self._budget // 8
        for d in buf[:max_items]:
            if n and size + len(d.envelope.raw) > cap:
                break
            n, size = n + 1, size + len(d.envelope.raw)
        while 0 < n < len(buf) and buf[n].tag == buf[n - 1].tag:
            size += len(buf[n].envelope.raw)
            n += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        self._buffered -= size
        return out

    def fetch(self, max_items: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        try:
            self._fit_prefetch()
            self._conn.process_data_events(time_limit=0)
            self._split_redelivered()
            while len(self._buffer) < max_items and self._buffered < self._budget // 8:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if self._buffer and left > 0.01:
                    left = min(left, 0.01)
                self._conn.process_data_events(time_limit=left)
                self._split_redelivered()
                if self._buffer and time.monotonic() >= deadline:
                    break
        except AMQP_ERRORS as exc:
            raise BusUnavailable(f"consume failed ({type(exc).__name__})") from None
        return self._take(max_items)

    def _split_redelivered(self) -> None:
        """A frame delivered again (a worker died or gave it back while it held it) is republished as
        one message per envelope, confirmed, and only then acked: from then on each envelope is
        delivered, counted and, if it keeps killing workers, dead-lettered on its own instead of with
        its whole frame. A crash in between means the frame comes again and is split again; the
        journal absorbs the repeats."""
        while self._split:
            tag, envs = self._split[0]
            self._bus.publish(envs, framed=False)
            self._chan.basic_ack(delivery_tag=tag, multiple=False)
            log.info("bus.frame_split", envelopes=len(envs), first_envelope_id=envs[0].id)
            self._split.pop(0)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            self._settle(lambda tag: self._chan.basic_ack(delivery_tag=tag, multiple=True), deliveries)

    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            self._settle(lambda tag: self._chan.basic_nack(delivery_tag=tag, multiple=True, requeue=True), deliveries)

    def _settle(self, fn: Any, deliveries: Sequence[Delivery]) -> None:
        try:
            fn(max(d.tag for d in deliveries))
        except AMQP_ERRORS as exc:
            raise BusUnavailable(f"ack failed ({type(exc).__name__})") from None

    def close(self) -> None:
        try:
            if self._conn.is_open:
                self._conn.close()
        except AMQP_ERRORS:
            pass
