"""What enjournal sends to RabbitMQ and how a publish is confirmed, shared by both publishers.

:class:`engine.bus.rabbit.RabbitBus` publishes through an I/O thread, :class:`engine.bus.rabbit_loop.LoopPublisher`
on an asyncio event loop; both send the same messages (:func:`work_messages`, :func:`dead_letter_properties`) to
the same topology (:func:`declare_topology`) and settle a :class:`Batch` per publish through :class:`Confirms`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.spec import Basic

from engine.bus import wire
from engine.config import RabbitBusConfig
from engine.envelope import Envelope
from engine.errors import BusUnavailable

#: the one routing key of the work and dead-letter exchanges
ROUTING_KEY = "envelope"
#: what a broken connection or channel raises
AMQP_ERRORS = (pika.exceptions.AMQPError, OSError)


def connection_params(cfg: RabbitBusConfig) -> pika.URLParameters:
    """Connection parameters for ``cfg`` (password from the environment), with enjournal's timeouts."""
    p = pika.URLParameters(cfg.url_with_secret())
    p.heartbeat = 30
    p.blocked_connection_timeout = 60
    p.connection_attempts = 1
    p.socket_timeout = 5
    return p


def dead_letter_properties(env: Envelope, extra: dict[str, Any] | None = None) -> pika.BasicProperties:
    """Dead-letter form: the metadata (and ``extra``, the reason) as AMQP headers, so the dead-letter
    queue shows the raw bytes as received."""
    headers = {k: v for k, v in env.headers().items() if v is not None}
    if extra:
        headers.update(extra)
    return pika.BasicProperties(delivery_mode=2, message_id=env.id, content_type=env.content_type, headers=headers)


#: one message to publish: (message id, body, properties)
Outgoing = tuple[str, bytes, pika.BasicProperties]


def frames(envelopes: Sequence[Envelope], most: int, max_bytes: int) -> Iterator[Sequence[Envelope]]:
    """Consecutive runs of at most ``most`` envelopes and (unless one alone is larger) ``max_bytes`` raw bytes."""
    start, size = 0, 0
    for i, env in enumerate(envelopes):
        if i > start and (i - start >= most or size + len(env.raw) > max_bytes):
            yield envelopes[start:i]
            start, size = i, 0
        size += len(env.raw)
    if start < len(envelopes):
        yield envelopes[start:]


def work_messages(envelopes: Sequence[Envelope], cfg: RabbitBusConfig, framed: bool) -> list[Outgoing]:
    """(message id, body, properties) of the work-queue messages for ``envelopes``: metadata in the body,
    and (``framed``) frames of up to ``frame_envelopes`` / ``frame_bytes`` (:mod:`engine.bus.wire`)."""
    out: list[Outgoing] = []
    for frame in frames(envelopes, cfg.frame_envelopes if framed else 1, cfg.frame_bytes):
        if len(frame) == 1:
            mid, body, ctype = frame[0].id, wire.encode(frame[0]), wire.ENVELOPE_TYPE
        else:
            mid, body, ctype = f"frame-{frame[0].id}", wire.encode_frame(frame), wire.FRAME_TYPE
        out.append((mid, body, pika.BasicProperties(delivery_mode=2, message_id=mid, content_type=ctype)))
    return out


def declare_topology(channel: Any, cfg: RabbitBusConfig) -> None:
    channel.exchange_declare(cfg.exchange, exchange_type="direct", durable=True)
    channel.exchange_declare(cfg.dead_letter_exchange, exchange_type="direct", durable=True)
    args: dict[str, Any] = {
        "x-dead-letter-exchange": cfg.dead_letter_exchange,
        "x-dead-letter-routing-key": ROUTING_KEY,
    }
    if cfg.queue_type == "quorum":
        args.update(
            {
                "x-queue-type": "quorum",
                "x-delivery-limit": cfg.delivery_limit,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        )
    channel.queue_declare(cfg.queue, durable=True, arguments=args)
    channel.queue_bind(cfg.queue, cfg.exchange, routing_key=ROUTING_KEY)
    dl_args = {"x-queue-type": "quorum"} if cfg.queue_type == "quorum" else {}
    channel.queue_declare(cfg.dead_letter_queue, durable=True, arguments=dl_args)
    channel.queue_bind(cfg.dead_letter_queue, cfg.dead_letter_exchange, routing_key=ROUTING_KEY)


@dataclass
class Batch:
    """Envelopes published together: their future (a thread's or an event loop's) settles once the broker
    confirmed every message of it, and fails if it nacked or returned any."""

    future: Future[None] | asyncio.Future[None]
    remaining: int
    failed: str | None = None

    def settle(self, ok: bool, why: str = "NACKED") -> None:
        if not ok and self.failed is None:
            self.failed = why
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            if self.failed:
                self.future.set_exception(BusUnavailable(f"broker did not accept the batch ({self.failed})"))
            else:
                self.future.set_result(None)

    def fail(self, why: str) -> None:
        self.failed = self.failed or why
        if not self.future.done():
            self.future.set_exception(BusUnavailable(f"broker did not accept the batch ({self.failed})"))


class Confirms:
    """The streaming confirms of one channel: which batch each delivery tag (and message id, for returns)
    belongs to. Used on the thread that owns the channel (the I/O thread, or an event loop)."""

    def __init__(self) -> None:
        self.seq = 0
        self.pending: dict[int, Batch] = {}
        self.by_message: dict[str, Batch] = {}

    def publish(self, chan: Any, messages: Sequence[Outgoing], exchange: str, batch: Batch) -> None:
        """Send ``messages`` (persistent, mandatory) as ``batch``; a channel error fails the batch."""
        if chan is None or not chan.is_open:
            batch.fail("NOT_CONNECTED")
            return
        try:
            for mid, body, props in messages:
                self.seq += 1
                self.pending[self.seq] = batch
                self.by_message[mid] = batch
                chan.basic_publish(exchange, ROUTING_KEY, body, props, mandatory=True)
        except AMQP_ERRORS as exc:
            batch.fail(type(exc).__name__)
        if len(self.by_message) > 100_000:
            live = {id(b) for b in self.pending.values()}
            self.by_message = {k: b for k, b in self.by_message.items() if id(b) in live}

    def on_confirm(self, frame: Any) -> None:
        method = frame.method
        ok = isinstance(method, Basic.Ack)
        tag = method.delivery_tag
        # pending is insertion-ordered with increasing tags: stop at the first newer one
        tags = list(itertools.takewhile(lambda t: t <= tag, self.pending)) if method.multiple else [tag]
        for t in tags:
            batch = self.pending.pop(t, None)
            if batch is not None:
                batch.settle(ok)

    def on_return(self, chan: Any, method: Any, props: Any, body: bytes) -> None:
        batch = self.by_message.get(props.message_id or "")
        if batch is not None:
            batch.failed = batch.failed or "UNROUTABLE"

    def fail_all(self, why: str) -> None:
        """Fail every batch still waiting (the channel is gone) and start over."""
        for batch in {id(b): b for b in self.pending.values()}.values():
            batch.fail(why)
        self.seq, self.pending, self.by_message = 0, {}, {}
