"""The MLLP listener: binds, accepts and serves connections on its event loop, and drains on stop
(see :mod:`adapters.mllp`)."""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
import threading

import structlog

from adapters.base import AdapterRuntime
from adapters.handoff import Handoff
from adapters.hl7_intake.options import load_strict
from adapters.mllp.accept import Acceptor, bind
from adapters.mllp.commits import CommitWatch
from adapters.mllp.lookups import StoreLookups
from adapters.mllp.loop_errors import LoopErrors
from adapters.mllp.memory import Trim
from adapters.mllp.options import MllpOptions
from adapters.mllp.publisher import Publisher
from adapters.mllp.server import Connection
from adapters.mllp.tls import server_context
from engine.errors import ConfigError

log = structlog.get_logger("adapters.mllp")


class MllpAdapter:
    """The listener; :meth:`run` blocks until ``stop`` is set and everything read is answered."""

    def __init__(self, name: str, settings: MllpOptions, runtime: AdapterRuntime) -> None:
        self.name, self.settings, self.runtime = name, settings, runtime
        self.handoff = Handoff(name, runtime.bus, "mllp")
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
            self.handoff,
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


__all__ = ["MllpAdapter"]
