"""Accepting MLLP connections: a limit on open connections, and a back-off when descriptors run out.

The listener binds its sockets itself (one per address ``host`` resolves to, as ``asyncio.start_server``
does) and accepts with ``loop.sock_accept``, one loop per socket, instead of using asyncio's server:

* **Descriptor exhaustion** (``EMFILE``/``ENFILE``/``ENOBUFS``/``ENOMEM`` from ``accept``): asyncio's server
  pauses for a second but first keeps calling ``accept`` once per backlog slot in the same tick, and
  reports each failure with a traceback to the loop's exception handler. Here the loop waits
  (:class:`engine.supervise.Backoff`: 0.1 s, doubling up to 2 s) and tries again; the connections queue in
  the kernel's backlog meanwhile. One ``mllp.accept_starved`` line when it starts, one
  ``mllp.accept_resumed`` (with the count of failed attempts) once connections were accepted again and
  none failed for ``QUIET_SECONDS`` (while descriptors are scarce, accepting flips between working and
  failing with every one freed: one episode).
* **Connection limit**: a connection beyond ``max_connections`` open ones is closed at once, before any
  TLS handshake. One ``mllp.connection_limit_reached`` line per burst, and ``mllp.connection_limit_cleared``
  with the number refused once a connection is admitted again.

Each admitted connection becomes a stream pair (TLS handshake included) from which ``make`` builds the
object that serves it. The acceptor is the one count of open connections: :attr:`Acceptor.connections`
holds every admitted one (``None`` while its handshake runs), the limit counts them, and the
``enjournal_mllp_connections`` gauge follows them. :meth:`Acceptor.close` stops accepting and cancels the
handshakes still running, so no connection starts being served after it; those already served go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import structlog

from adapters.inbox import PROCESS_WIDE, errno_name
from engine import metrics
from engine.supervise import Backoff

log = structlog.get_logger("adapters.mllp")


class Served(Protocol):
    async def serve(self) -> None: ...


S = TypeVar("S", bound=Served)
READ_LIMIT = 64 * 1024  # the stream reader's buffer, as asyncio.start_server's default


def bind(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets for every address of ``host`` (raises OSError when one cannot be bound)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    try:
        for family, kind, proto, _, addr in dict.fromkeys(infos):
            s = socket.socket(family, kind, proto)
            socks.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr[0], port, *addr[2:]))
            port = port or s.getsockname()[1]  # port 0: the first free port, then the same on every address
            s.listen(backlog)
            s.setblocking(False)
    except OSError:
        for s in socks:
            s.close()
        raise
    return socks


class Acceptor(Generic[S]):
    """Accepts on ``socks`` until :meth:`close`; see the module docstring."""

    MIN_WAIT, MAX_WAIT = 0.1, 2.0
    QUIET_SECONDS = 3.0  # accepting without a failure for this long ends an episode of starvation

    def __init__(
        self,
        name: str,
        socks: list[socket.socket],
        make: Callable[[asyncio.StreamReader, asyncio.StreamWriter], S],
        *,
        max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 10.0,
    ) -> None:
        self.name, self.socks, self.make = name, socks, make
        self.max_connections, self.ssl, self.handshake_timeout = max_connections, ssl_context, handshake_timeout
        #: every admitted connection's task -> what serves it (None while its TLS handshake runs); the loop
        #: keeps only weak references to tasks
        self.connections: dict[asyncio.Task[None], S | None] = {}
        self.refused = 0  # refused in the current burst
        self._backoff = Backoff(first=self.MIN_WAIT, most=self.MAX_WAIT)
        self._starved_since: float | None = None
        self._failures = 0
        self._recovery: asyncio.TimerHandle | None = None
        self._loops: list[asyncio.Task[None]] = []

    @property
    def port(self) -> int:
        return int(self.socks[0].getsockname()[1])

    @property
    def open(self) -> int:
        """Admitted connections not yet finished (TLS handshakes included)."""
        return len(self.connections)

    def served(self) -> list[S]:
        """The connections being served (past their handshake)."""
        return [c for c in list(self.connections.values()) if c is not None]

    def start(self) -> None:
        self._loops = [asyncio.ensure_future(self._accept_loop(s)) for s in self.socks]

    def close(self) -> None:
        """Stop accepting and cancel the handshakes still running; connections already served go on."""
        if self._recovery is not None:
            self._recovery.cancel()
        for t in self._loops:
            t.cancel()
        for s in self.socks:
            s.close()
        for task, served in list(self.connections.items()):
            if served is None:
                task.cancel()

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        wait = 0.0
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except (ConnectionAbortedError, InterruptedError):
                continue
            except OSError as exc:
                if sock.fileno() < 0:
                    return  # closed by close()
                self._starving(exc)
                wait = self._backoff.next(wait, 0.0)
                await asyncio.sleep(wait)
                continue
            wait = 0.0
            self._fed()
            self._admit(conn)

    def _starving(self, exc: OSError) -> None:
        self._failures += 1
        if self._recovery is not None:
            self._recovery.cancel()
            self._recovery = None
        if self._starved_since is None:
            self._starved_since = time.monotonic()
            log.warning(
                "mllp.accept_starved", adapter=self.name, error=errno_name(exc), starved=exc.errno in PROCESS_WIDE
            )

    def _fed(self) -> None:
        if self._starved_since is not None and self._recovery is None:
            self._recovery = asyncio.get_running_loop().call_later(self.QUIET_SECONDS, self._recovered)

    def _recovered(self) -> None:
        assert self._starved_since is not None
        log.info(
            "mllp.accept_resumed",
            adapter=self.name,
            failures=self._failures,
            seconds=round(time.monotonic() - self._starved_since, 1),
        )
        self._starved_since, self._failures, self._recovery = None, 0, None

    def _admit(self, conn: socket.socket) -> None:
        if self.open >= self.max_connections:
            if self.refused == 0:
                log.warning("mllp.connection_limit_reached", adapter=self.name, max_connections=self.max_connections)
            self.refused += 1
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()
            return
        if self.refused:
            log.info("mllp.connection_limit_cleared", adapter=self.name, refused=self.refused)
            self.refused = 0
        task = asyncio.ensure_future(self._serve(conn))
        self.connections[task] = None
        metrics.mllp_connection(self.name, 1)
        task.add_done_callback(functools.partial(self._finished, conn))

    def _finished(self, conn: socket.socket, task: asyncio.Task[None]) -> None:
        """A connection ended: uncount it. Its socket is closed by then, except for a task cancelled before it
        ever ran (:meth:`close`)."""
        self.connections.pop(task, None)
        metrics.mllp_connection(self.name, -1)
        conn.close()

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        transport: asyncio.Transport | None = None
        try:
            reader = asyncio.StreamReader(limit=READ_LIMIT)
            protocol = asyncio.StreamReaderProtocol(reader)
            try:
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol,
                    conn,
                    ssl=self.ssl,
                    ssl_handshake_timeout=self.handshake_timeout if self.ssl else None,
                )
            except (OSError, ssl.SSLError, TimeoutError) as exc:
                log.info("mllp.handshake_failed", adapter=self.name, error=type(exc).__name__)
                return
            served = self.make(reader, asyncio.StreamWriter(transport, protocol, reader, loop))
            self.connections[task] = served
            await served.serve()
        except Exception as exc:  # noqa: BLE001 - a bug in one connection must not reach the loop's handler
            log.error("mllp.connection_failed", adapter=self.name, error=type(exc).__name__)
        finally:
            if transport is None:
                conn.close()  # the handshake failed or was cancelled
            else:
                transport.abort()  # a no-op once the connection closed itself; else (cancelled) dropped now
