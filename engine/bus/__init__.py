"""The bus interface: publish envelopes with confirms, consume them with acks after commit.

Two implementations behind the same interface:

* :mod:`engine.bus.rabbit`: RabbitMQ (pika). Topology declared by the engine, persistent messages,
  ``mandatory`` publishing, streaming publisher confirms, manual multi-acks, dead-letter exchange.
* :mod:`engine.bus.embedded`: a durable queue table in a local SQLite file (no broker server),
  written in batches, that survives kill -9.

Contract:

* ``Bus.publish(envelopes)`` returns only when **every** envelope is durably confirmed; it raises
  :class:`engine.errors.BusUnavailable` otherwise (the caller must not ACK its sender nor move its file).
  It is thread-safe. ``publish_async`` returns a ``concurrent.futures.Future`` for event loops;
  ``ready_to_publish`` says whether it returns at once (connected) or may block while connecting.
* ``Bus.consumer(prefetch)`` opens a consumer (one per worker thread): ``fetch`` a batch,
  ``ack`` it after the store commit, ``requeue`` it on a transient failure.
* ``Bus.dead_letter(items)`` publishes envelopes with their reason to the dead-letter queue.
* A bus may also offer ``loop_publisher()``: an :class:`EventLoopPublisher` for one asyncio event loop,
  with the same messages and confirms as ``publish_async`` but no thread hand-off (RabbitMQ:
  :mod:`engine.bus.rabbit_loop`). An MLLP listener uses it where the bus has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from engine.envelope import Envelope


@dataclass(frozen=True, slots=True)
class Delivery:
    envelope: Envelope
    tag: int
    redelivered: bool = False
    #: how many times the broker delivered it before (quorum queues' x-delivery-count), if known
    delivery_count: int = 0


class Consumer(Protocol):
    def fetch(self, max_items: int, timeout: float) -> list[Delivery]: ...
    def ack(self, deliveries: Sequence[Delivery]) -> None: ...
    def requeue(self, deliveries: Sequence[Delivery]) -> None: ...
    def close(self) -> None: ...


class EventLoopPublisher(Protocol):
    def start(self) -> None: ...
    async def publish(self, envelopes: Sequence[Envelope]) -> None: ...
    async def close(self, timeout: float = 5.0) -> None: ...


class Bus(Protocol):
    def declare(self) -> None: ...
    def check(self) -> None: ...
    def publish(self, envelopes: Sequence[Envelope], timeout: float = 30.0) -> None: ...
    def publish_async(self, envelopes: Sequence[Envelope]) -> Future[None]: ...
    def ready_to_publish(self) -> bool: ...
    def dead_letter(self, items: Sequence[tuple[Envelope, str]]) -> None: ...
    def consumer(self, prefetch: int = 1000) -> Consumer: ...
    def depth(self) -> dict[str, int]: ...
    def close(self) -> None: ...
