"""MLLP listener (``type: mllp``): HL7 v2.1-2.8 over TCP/TLS, original and enhanced acknowledgements.

Receives MLLP frames (``<VT> message <FS><CR>``) on many concurrent connections, many messages
per connection (pipelined, answered in order). Each message's MSH decides its answer
(:mod:`adapters.mllp.triage`); every message, rejected ones too, is published on the bus as an
envelope (``content_type: application/hl7-v2``, charset from MSH-18, ``dedup_key`` =
``HL7|MSH-3|MSH-4|MSH-10`` with control characters escaped), and the ACK is sent only after the broker
confirmed it (:mod:`adapters.mllp.publisher`). The adapter never maps.

* **Duplicates**: a resend of the same bytes under the same key is answered with its original code and not
  published again. Other bytes under a key already seen are a different message: published and
  processed like any other, flagged ``control_id_reused`` (see :mod:`adapters.mllp.publisher`).
* **ack_after**: ``broker`` (default): AA once the broker confirmed the envelope. ``commit``: AA only once
  a worker committed it to the journal, AE with an ERR segment (the dead letter's reason code) when the
  mapping rejected it; no commit within ``commit_timeout`` closes the connection without an answer, like
  an unconfirmed publish, and the sender's resend is answered once the original is committed
  (:mod:`adapters.mllp.server`, :mod:`adapters.mllp.commits`).
* **Enhanced mode** (MSH-15/16): the accept ACK after the confirm (``ack_after: commit``: after the commit),
  the application ACK, as MSH-16 asks, once the commit outcome is known (in ``broker`` mode too).
* **Self-protection**: ``idle_timeout`` also within a frame, ``frame_timeout`` for a whole frame,
  ``max_buffered_bytes`` per connection, ``max_connections`` (beyond it a connection is closed at once),
  a back-off when ``accept`` runs out of descriptors (:mod:`adapters.mllp.accept`), and asyncio's own
  error reports logged by type only (:mod:`adapters.mllp.loop_errors`). Memory held for connections is
  at most about ``max_connections`` x (``max_buffered_bytes`` + ``max_message_bytes``).

Example::

    adapters:
      lab-mllp:
        type: mllp
        host: 0.0.0.0
        port: 2575
        mapping: hl7v2
        source_system: dips-lab
        accepted_types: [ADT, ORU, MDM]
        max_message_bytes: 8388608     # one message; unset: what one bus message carries
        idle_timeout: 300
        max_connections: 512
        ack_after: broker              # or commit: AA only after the journal commit
        tls: {certfile: mllp.crt, keyfile: mllp.key, cafile: senders-ca.crt}

Package layout: ``framing`` (MLLP bytes), ``ack`` (ACK/NAK), ``triage`` (MSH checks + envelope),
``publisher`` (batched confirms, duplicates), ``commits`` (waiting for the journal commit), ``lookups``
(the store look-ups both share), ``server`` (one connection), ``accept`` (sockets, the open connections
and their limit, descriptor back-off), ``loop_errors``, ``memory`` (heap trim after big partial frames),
``tls``, ``client`` (a small sender for tests and the benchmark).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
import threading
from typing import Literal

import structlog
from pydantic import Field

from adapters.base import AdapterRuntime
from adapters.mllp.accept import Acceptor, bind
from adapters.mllp.commits import CommitWatch
from adapters.mllp.lookups import StoreLookups
from adapters.mllp.loop_errors import LoopErrors
from adapters.mllp.memory import Trim
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
    #: seconds without a byte before a connection is closed (between frames once everything is answered)
    idle_timeout: float = Field(default=300.0, gt=0)
    #: seconds from a frame's first byte to its end block before the connection is closed
    frame_timeout: float = Field(default=600.0, gt=0)
    #: open connections; one more is closed at once
    max_connections: int = Field(default=512, ge=1)
    #: bytes of frames read and not yet answered per connection before reading pauses
    max_buffered_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    max_pending_per_connection: int = Field(default=1000, ge=1)
    #: when the sender's first answer (AA; enhanced mode: the accept ACK) goes out: after the broker's
    #: confirm, or after the worker's journal commit
    ack_after: Literal["broker", "commit"] = "broker"
    #: seconds an answer waits for the journal commit (ack_after commit, enhanced-mode application ACK)
    commit_timeout: float = Field(default=30.0, gt=0)
    #: how often the listener looks up the commits its connections wait for (one query for all of them)
    commit_poll_ms: float = Field(default=5.0, gt=0)
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

    def published_limits(self) -> dict[str, int]:
        """The largest envelope (:mod:`engine.limits`): one message (left unset: lowered to fit the bus)."""
        return {"max_message_bytes": self.max_message_bytes}


class MllpAdapter:
    """The listener; :meth:`run` blocks until ``stop`` is set and everything read is answered."""

    def __init__(self, name: str, settings: Settings, runtime: AdapterRuntime) -> None:
        self.name, self.settings, self.runtime = name, settings, runtime
        self.ready = threading.Event()  # set once listening; ``port`` is then the bound port
        self.port: int = settings.port
        self._acceptor: Acceptor[Connection] | None = None
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
            raise ConfigError(
                f"adapter {self.name!r}: cannot listen on port {self.settings.port} ({exc.strerror})"
            ) from None

    def run(self, stop: threading.Event) -> None:
        sys.setswitchinterval(min(sys.getswitchinterval(), self.settings.gil_switch_interval_ms / 1000))
        asyncio.run(self._serve(stop))

    async def _serve(self, stop: threading.Event) -> None:
        s = self.settings
        asyncio.get_running_loop().set_exception_handler(LoopErrors(self.name))
        lookups = StoreLookups(self.runtime.keys)
        publisher = Publisher(
            self.runtime.bus,
            lookups,
            max_batch=s.max_batch,
            max_inflight=s.max_inflight_batches,
            retry_seconds=s.bus_retry_seconds,
            cache_size=s.dedup_cache_size,
            lookup_budget=s.dedup_lookup_budget_ms / 1000,
        )
        commits = CommitWatch(lookups, interval=s.commit_poll_ms / 1000)
        trim = Trim()
        publishing = asyncio.create_task(publisher.run())
        make = functools.partial(
            Connection,
            name=self.name,
            settings=s,
            publisher=publisher,
            commits=commits,
            strict=self._strict,
            released=trim.released,
        )
        ssl_ctx = server_context(s.tls) if s.tls is not None else None
        try:
            socks = bind(s.host, s.port, backlog=512)
        except OSError as exc:
            await publisher.close()
            await publishing
            await lookups.close()
            raise ConfigError(f"adapter {self.name!r}: cannot listen on port {s.port} ({exc.strerror})") from None
        acceptor = Acceptor(self.name, socks, make, max_connections=s.max_connections, ssl_context=ssl_ctx)
        acceptor.start()
        self.port, self._acceptor = acceptor.port, acceptor
        log.info("mllp.listening", adapter=self.name, port=self.port, tls=ssl_ctx is not None)
        self.ready.set()
        try:
            while not stop.is_set():
                await asyncio.sleep(0.05)
        finally:
            await self._drain(acceptor, publisher, publishing)
            await commits.close()
            await lookups.close()
            trim.cancel()

    def buffered_bytes(self) -> int:
        """Bytes the open connections hold (partial frames and frames not yet answered); for tests and ops."""
        return sum(c.buffered for c in self._acceptor.served()) if self._acceptor is not None else 0

    @property
    def open_connections(self) -> int:
        """Admitted connections not yet closed (TLS handshakes included)."""
        return self._acceptor.open if self._acceptor is not None else 0

    async def _drain(
        self, acceptor: Acceptor[Connection], publisher: Publisher, publishing: asyncio.Task[None]
    ) -> None:
        acceptor.close()  # no new connection, and no handshake still running becomes one
        publisher.stopping = True
        for conn in acceptor.served():
            conn.stop_reading()
        pending = list(acceptor.connections)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.settings.drain_timeout)
            for t in late:
                t.cancel()
            if late:  # let them end (their count and gauge with them) before the loop does
                await asyncio.wait(late, timeout=5.0)
        await publisher.close()
        await publishing
        log.info("mllp.stopped", adapter=self.name)


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> MllpAdapter:
    return MllpAdapter(name, settings, runtime)


__all__ = ["MllpAdapter", "Settings", "build"]
