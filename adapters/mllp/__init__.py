"""MLLP listener (``type: mllp``): HL7 v2.1-2.8 over TCP/TLS, original and enhanced acknowledgements.

Receives MLLP frames (``<VT> message <FS><CR>``) on many concurrent connections, many messages
per connection (pipelined, answered in order). Each message's MSH decides its answer
(:mod:`adapters.mllp.triage`); every message, rejected ones too, is published on the bus as an
envelope (``content_type: application/hl7-v2``, charset from MSH-18, ``dedup_key`` =
``HL7|MSH-3|MSH-4|MSH-10``), and the ACK is sent only after the broker confirmed it
(:mod:`adapters.mllp.publisher`). A resend of a confirmed message is answered with its original
code and not published again. The adapter never maps.

Example::

    adapters:
      lab-mllp:
        type: mllp
        host: 0.0.0.0
        port: 2575
        mapping: hl7v2
        source_system: dips-lab
        accepted_types: [ADT, ORU, MDM]
        max_message_bytes: 16777216
        idle_timeout: 300
        tls: {certfile: mllp.crt, keyfile: mllp.key, cafile: senders-ca.crt}

Package layout: ``framing`` (MLLP bytes), ``ack`` (ACK/NAK), ``triage`` (MSH checks + envelope),
``publisher`` (batched confirms, duplicates), ``server`` (asyncio connections), ``tls``, ``client``
(a small sender for tests and the benchmark).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from typing import Any, Literal

import structlog
from pydantic import Field

from adapters.base import AdapterRuntime
from adapters.mllp.publisher import Publisher
from adapters.mllp.server import Connection
from adapters.mllp.tls import TlsSettings, server_context
from adapters.mllp.triage import Hl7Options, load_strict
from engine.errors import ConfigError

log = structlog.get_logger("adapters.mllp")


class Settings(Hl7Options):
    type: Literal["mllp"]
    source_system: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=2575, ge=0, le=65535)  # 0: any free port (tests)
    tls: TlsSettings | None = None
    max_message_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    idle_timeout: float = Field(default=300.0, gt=0)
    max_pending_per_connection: int = Field(default=1000, ge=1)
    max_batch: int = Field(default=500, ge=1)
    max_inflight_batches: int = Field(default=8, ge=1)
    #: how long to keep retrying a publish while the bus is unavailable before dropping the connection
    bus_retry_seconds: float = Field(default=30.0, ge=0)
    dedup_cache_size: int = Field(default=100_000, ge=0)
    #: how long a new message waits for the store's duplicate look-up before it is published anyway (0:
    #: publish at once, the look-up runs meanwhile; the ACK still carries the code the look-up finds)
    dedup_lookup_budget_ms: float = Field(default=0.0, ge=0)
    drain_timeout: float = Field(default=30.0, gt=0)
    #: the interpreter's thread switch interval while a listener runs (process-wide). Mapping threads
    #: in the same process hold the GIL for up to this long each time the listener wants it back.
    gil_switch_interval_ms: float = Field(default=0.5, gt=0, le=100)


class MllpAdapter:
    """The listener; :meth:`run` blocks until ``stop`` is set and everything read is answered."""

    def __init__(self, name: str, settings: Settings, runtime: AdapterRuntime) -> None:
        self.name, self.settings, self.runtime = name, settings, runtime
        self.ready = threading.Event()  # set once listening; ``port`` is then the bound port
        self.port: int = settings.port
        self._strict = load_strict(settings)

    def check(self) -> None:
        """Load the TLS material and make sure the port can be bound."""
        if self.settings.tls is not None:
            server_context(self.settings.tls)
        try:
            with socket.socket(socket.AF_INET6 if ":" in self.settings.host else socket.AF_INET) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((self.settings.host, self.settings.port))
        except OSError as exc:
            raise ConfigError(f"adapter {self.name!r}: cannot listen on port {self.settings.port} "
                              f"({exc.strerror})") from None

    def run(self, stop: threading.Event) -> None:
        sys.setswitchinterval(min(sys.getswitchinterval(), self.settings.gil_switch_interval_ms / 1000))
        asyncio.run(self._serve(stop))

    async def _serve(self, stop: threading.Event) -> None:
        s = self.settings
        publisher = Publisher(self.runtime.bus, self.runtime.keys, max_batch=s.max_batch,
                              max_inflight=s.max_inflight_batches, retry_seconds=s.bus_retry_seconds,
                              cache_size=s.dedup_cache_size, lookup_budget=s.dedup_lookup_budget_ms / 1000)
        publishing = asyncio.create_task(publisher.run())
        conns: dict[Connection, asyncio.Task[Any]] = {}

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = Connection(reader, writer, name=self.name, settings=s, publisher=publisher, strict=self._strict)
            conns[conn] = asyncio.current_task()  # type: ignore[assignment]
            try:
                await conn.serve()
            finally:
                conns.pop(conn, None)

        ssl_ctx = server_context(s.tls) if s.tls is not None else None
        try:
            server = await asyncio.start_server(handle, s.host, s.port, ssl=ssl_ctx, reuse_address=True,
                                                backlog=512, ssl_handshake_timeout=10.0 if ssl_ctx else None)
        except OSError as exc:
            await publisher.close()
            await publishing
            raise ConfigError(f"adapter {self.name!r}: cannot listen on port {s.port} ({exc.strerror})") from None
        self.port = server.sockets[0].getsockname()[1]
        log.info("mllp.listening", adapter=self.name, port=self.port, tls=ssl_ctx is not None)
        self.ready.set()
        try:
            while not stop.is_set():
                await asyncio.sleep(0.05)
        finally:
            await self._drain(server, conns, publisher, publishing)

    async def _drain(self, server: asyncio.Server, conns: dict[Connection, asyncio.Task[Any]],
                     publisher: Publisher, publishing: asyncio.Task[None]) -> None:
        server.close()
        publisher.stopping = True
        for conn in list(conns):
            conn.stop_reading()
        pending = list(conns.values())
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.settings.drain_timeout)
            for t in late:
                t.cancel()
        await publisher.close()
        await publishing
        log.info("mllp.stopped", adapter=self.name)


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> MllpAdapter:
    return MllpAdapter(name, settings, runtime)


__all__ = ["MllpAdapter", "Settings", "build"]
