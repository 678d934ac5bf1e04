"""RabbitMQ publishing on an asyncio event loop: pika's ``AsyncioConnection``, streaming confirms, no I/O thread.

The MLLP listener publishes each message as it arrives and answers the sender once the broker confirmed it.
Through the bus's I/O thread (:meth:`engine.bus.rabbit.RabbitBus.publish_async`) every message crossed
threads twice, a hand-off to the thread and the confirm back to the loop, each a wake-up and a context
switch. On the loop itself the connection's socket is one more file descriptor of the loop's selector.

Same messages and guarantees as ``publish_async``: persistent, ``mandatory``, envelopes in frames
(:mod:`engine.bus.wire`); :meth:`LoopPublisher.publish` returns once the broker confirmed all of them and
raises :class:`engine.errors.BusUnavailable` when it nacked or returned any, when the connection was lost
meanwhile, or when no confirm came within ``confirm_timeout``. While disconnected, ``publish`` waits up to
``connect_timeout`` for the connection, then raises; the connection is re-opened in the background with a
growing back-off (0.2 s to 5 s).

Use it from one event loop only: :meth:`start` on that loop, :meth:`close` when done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from pika.adapters.asyncio_connection import AsyncioConnection

from engine.bus.amqp import Batch, Confirms, connection_params, work_messages
from engine.config import RabbitBusConfig
from engine.envelope import Envelope
from engine.errors import BusUnavailable

log = structlog.get_logger("engine.bus.rabbit")

_FIRST_BACKOFF, _MAX_BACKOFF = 0.2, 5.0


class LoopPublisher:
    """See the module docstring."""

    def __init__(self, cfg: RabbitBusConfig, *, connect_timeout: float = 10.0) -> None:
        self.cfg = cfg
        self.connect_timeout = connect_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: AsyncioConnection | None = None
        self._chan: Any = None
        self._confirms = Confirms()
        self._ready: asyncio.Event | None = None
        self._closed: asyncio.Event | None = None
        self._closing = False
        self._backoff = _FIRST_BACKOFF
        self._retry: asyncio.TimerHandle | None = None

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Open the connection (in the background) on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._ready, self._closed = asyncio.Event(), asyncio.Event()
        self._connect()

    async def close(self, timeout: float = 5.0) -> None:
        """Close the connection; a batch still unconfirmed fails (its sender gets no ACK)."""
        self._closing = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        conn = self._conn
        if conn is None or self._closed is None:
            return
        if not (conn.is_closing or conn.is_closed):
            conn.close()
        try:
            await asyncio.wait_for(self._closed.wait(), timeout)
        except TimeoutError:
            log.warning("bus.publisher_close_timeout")

    @property
    def ready(self) -> bool:
        return self._chan is not None and self._chan.is_open

    # publishing --------------------------------------------------------------------------
    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish ``envelopes`` and wait for the broker's confirm of all of them (see the module docstring)."""
        messages = work_messages(envelopes, self.cfg, True)
        if not messages:
            return
        if not self.ready:
            await self._wait_ready()
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._confirms.publish(self._chan, messages, self.cfg.exchange, Batch(fut, len(messages)))
        try:
            async with asyncio.timeout(self.cfg.confirm_timeout):  # cancels fut: a later confirm finds it done
                await fut
        except TimeoutError:
            raise BusUnavailable("publisher confirms timed out") from None

    async def _wait_ready(self) -> None:
        if self._ready is None or self._closing:
            raise BusUnavailable("the publisher is not started or is closing")
        try:
            await asyncio.wait_for(self._ready.wait(), self.connect_timeout)
        except TimeoutError:
            raise BusUnavailable("not connected to RabbitMQ") from None

    # connection --------------------------------------------------------------------------
    def _connect(self) -> None:
        self._retry = None
        if self._closing:
            return
        assert self._closed is not None
        self._closed.clear()
        try:
            self._conn = AsyncioConnection(
                connection_params(self.cfg),
                on_open_callback=self._on_open,
                on_open_error_callback=self._on_open_error,
                on_close_callback=self._on_closed,
                custom_ioloop=self._loop,
            )
        except Exception as exc:  # noqa: BLE001 - any failure means: try again later
            log.warning("bus.publisher_error", error=type(exc).__name__)
            self._lost("CONNECTION_FAILED")

    def _on_open(self, conn: AsyncioConnection) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_open_error(self, conn: AsyncioConnection, err: Any) -> None:
        log.warning("bus.connect_failed", error=type(err).__name__)
        self._lost("CONNECTION_FAILED")

    def _on_closed(self, conn: AsyncioConnection, reason: Any) -> None:
        if not self._closing:
            log.warning("bus.publisher_connection_lost", reason=type(reason).__name__)
        self._lost("CONNECTION_LOST")

    def _on_channel(self, chan: Any) -> None:
        self._confirms = confirms = Confirms()
        chan.add_on_close_callback(self._on_channel_closed)
        chan.add_on_return_callback(confirms.on_return)
        chan.confirm_delivery(confirms.on_confirm)
        self._chan = chan
        self._backoff = _FIRST_BACKOFF
        assert self._ready is not None
        self._ready.set()
        log.info("bus.publisher_ready", on="event_loop")

    def _on_channel_closed(self, chan: Any, reason: Any) -> None:
        self._chan = None
        if self._ready is not None:
            self._ready.clear()
        conn = self._conn
        if conn is not None and conn.is_open:
            conn.close()  # then _on_closed fails what waits and reconnects

    def _lost(self, why: str) -> None:
        self._chan, self._conn = None, None
        if self._ready is not None:
            self._ready.clear()
        self._confirms.fail_all(why)
        if self._closed is not None:
            self._closed.set()
        if self._closing or self._retry is not None or self._loop is None:
            return
        self._retry = self._loop.call_later(self._backoff, self._connect)
        self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
