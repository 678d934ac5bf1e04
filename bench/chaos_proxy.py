"""A TCP proxy the fault suite controls, in front of PostgreSQL (or anything on 127.0.0.1).

The engine under test talks to ``127.0.0.1:<proxy.port>`` instead of the real server, so an outage
can be injected without stopping the shared database cluster:

* :meth:`TcpProxy.drop` cuts every open connection and refuses new ones (connections are accepted
  and closed at once: the client sees "server closed the connection unexpectedly");
* :meth:`TcpProxy.stall` keeps connections open but forwards nothing (a network partition);
* :meth:`TcpProxy.restore` forwards again (stalled bytes flow on).

It runs its own asyncio loop in a daemon thread; every public method is thread-safe.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

_CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = listen_port
        self.state = "up"  # up / dropped / stalled
        self._open = threading.Event()
        self._flowing: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._run, name="chaos-proxy", daemon=True)

    # -- control (any thread) -------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._thread.start()
        if not self._open.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def drop(self) -> None:
        self._call(self._drop)

    def stall(self) -> None:
        self._call(self._stall)

    def restore(self) -> None:
        self._call(self._restore)

    def close(self) -> None:
        if self._loop.is_running():
            self._call(self._drop)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, fn: Any) -> None:
        asyncio.run_coroutine_threadsafe(fn(), self._loop).result(10)

    # -- loop side ------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._listen())
            self._open.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._shutdown())
        finally:
            self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _listen(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _drop(self) -> None:
        self.state = "dropped"
        assert self._flowing is not None
        self._flowing.set()  # stalled pumps wake up and see the drop
        for w in list(self._links):
            w.transport.abort()
        self._links.clear()

    async def _stall(self) -> None:
        self.state = "stalled"
        assert self._flowing is not None
        self._flowing.clear()

    async def _restore(self) -> None:
        self.state = "up"
        assert self._flowing is not None
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.state == "dropped":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        # one side closed or failed (a killed client resets its socket): close the other side too,
        # as a direct connection would, so the server ends the session and its transaction
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for w in (writer, up_writer):
            self._links.discard(w)
            w.transport.abort()
        for p in pumps:
            p.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data or self.state == "dropped":
                    break
                await self._flowing.wait()
                if self.state == "dropped":
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            pass
