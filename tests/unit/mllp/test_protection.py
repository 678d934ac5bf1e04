"""The listener protects itself: open frames time out, connections are capped, accept survives EMFILE.

Real sockets, the embedded (SQLite) bus and a SQLite store; the descriptor-exhaustion test runs the
listener in a subprocess whose RLIMIT_NOFILE is lowered, so the test process keeps its descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from adapters.mllp.accept import Acceptor, bind
from adapters.mllp.client import MllpClient, synthetic_adt
from adapters.mllp.framing import Frame, FrameDecoder, encode
from adapters.mllp.loop_errors import LoopErrors
from engine import metrics
from engine.bus.embedded import EmbeddedBus
from engine.store import Store
from tests.helpers import fnr
from tests.unit.mllp.helpers import listening


def _until(check: object, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def _closed_by_server(sock: socket.socket, timeout: float = 15.0) -> bytes:
    """Everything the server still sends, up to its close (a reset counts as a close)."""
    sock.settimeout(timeout)
    got = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            got += chunk
    return got


def test_200_open_frames_are_closed_after_idle_timeout_and_released(bus: EmbeddedBus, store: Store) -> None:
    partial = b"\x0bMSH|^~\\&|LOADGEN|TEST|ENJOURNAL|HOSP|20240102030405||ADT^A01|OPEN|P|2.5\r" + b"x" * 64_000
    with listening(bus, store, idle_timeout=2.0) as a:
        socks = [socket.create_connection(("127.0.0.1", a.port)) for _ in range(200)]
        try:
            socks[0].sendall(encode(synthetic_adt(1)))  # complete before the open frame: still answered
            for s in socks:
                s.sendall(partial)
            held = 200 * (len(partial) - 1)  # the frame's content; its start byte is not kept
            assert _until(lambda: a.open_connections == 200 and a.buffered_bytes() == held)
            answers = [_closed_by_server(s) for s in socks]
        finally:
            for s in socks:
                s.close()
        assert _until(lambda: a.open_connections == 0)
        assert a.buffered_bytes() == 0
    frames = [e for e in FrameDecoder().feed(answers[0]) if isinstance(e, Frame)]
    assert len(frames) == 1 and b"MSA|AA|MSG00000001" in frames[0].payload
    assert answers[1:] == [b""] * 199


def test_a_frame_trickled_past_frame_timeout_is_closed(bus: EmbeddedBus, store: Store) -> None:
    with (
        capture_logs() as logs,
        listening(bus, store, idle_timeout=5, frame_timeout=0.5) as a,
        socket.create_connection(("127.0.0.1", a.port)) as s,
    ):
        s.sendall(b"\x0bMSH|^~\\&|")
        s.settimeout(10)
        t0 = time.monotonic()
        with contextlib.suppress(OSError):
            while time.monotonic() - t0 < 8 and s.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) != b"":
                time.sleep(0.1)
                s.sendall(b"x")  # never idle, never finished
        with contextlib.suppress(OSError):
            s.sendall(b"x")
        assert _closed_by_server(s) == b""
    assert any(e["event"] == "mllp.frame_timeout" for e in logs)


def test_frames_held_per_connection_are_capped(bus: EmbeddedBus, store: Store) -> None:
    """With ack_after commit and no worker, no frame is answered: the connection stops reading once it holds
    max_buffered_bytes, and the sender is pushed back."""
    big = synthetic_adt(5) + b"NTE|1||" + b"y" * 100_000 + b"\r"
    with (
        listening(bus, store, ack_after="commit", commit_timeout=3, max_buffered_bytes=300_000) as a,
        socket.create_connection(("127.0.0.1", a.port)) as s,
    ):
        s.setblocking(False)
        sent, data = 0, encode(big) * 200  # 20 MB offered
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            with contextlib.suppress(BlockingIOError):
                sent += s.send(data[sent : sent + 65536])
            time.sleep(0.001)
        held = a.buffered_bytes()
    assert 300_000 <= held <= 300_000 + 2 * len(big) + 256 * 1024  # the cap, plus one frame and one read
    assert sent < len(data)  # the sender was pushed back


def test_connections_beyond_max_connections_are_refused_and_logged_once(bus: EmbeddedBus, store: Store) -> None:
    with capture_logs() as logs, listening(bus, store, max_connections=3) as a:
        first = [MllpClient("127.0.0.1", a.port) for _ in range(3)]
        assert [c.send(synthetic_adt(10 + i))[0].code for i, c in enumerate(first)] == ["AA"] * 3
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", a.port)) as s:
                assert _closed_by_server(s, 5) == b""
        first.pop().close()
        assert _until(lambda: a.open_connections == 2)
        with MllpClient("127.0.0.1", a.port) as again:
            assert again.send(synthetic_adt(20))[0].code == "AA"
        for c in first:
            c.close()
    events = [e for e in logs if e["event"].startswith("mllp.connection_limit")]
    assert [(e["event"], e.get("refused")) for e in events] == [
        ("mllp.connection_limit_reached", None),
        ("mllp.connection_limit_cleared", 5),
    ]


def test_the_loop_handler_logs_the_error_type_only() -> None:
    handler = LoopErrors("mllp-test")
    secret = f"value {fnr(3)}"
    loop = asyncio.new_event_loop()
    with capture_logs() as logs:
        for _ in range(3):
            handler(loop, {"message": secret, "exception": ValueError(secret)})
        handler(loop, {"message": "Future exception was never retrieved"})
    loop.close()
    assert [(e["event"], e["error"]) for e in logs] == [("mllp.loop_error", "ValueError"), ("mllp.loop_error", "none")]
    assert fnr(3) not in repr(logs)


_LISTENER = """
import os, resource, sys, threading
from engine import logging as elog
elog.configure("info", "json")
from engine.bus.embedded import EmbeddedBus
from engine.store import Store
from tests.unit.mllp.helpers import listening
bus, store = EmbeddedBus(sys.argv[1] + "/q.db"), Store("sqlite:///" + sys.argv[1] + "/j.db")
with listening(bus, store, max_connections=10_000, idle_timeout=float(sys.argv[2])) as a:
    if sys.argv[3] == "starve":
        in_use = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 20, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    print(a.port, flush=True)
    sys.stdin.read()
"""


def _listener_process(
    tmp_path: Path, idle_timeout: float = 300, starve: bool = False
) -> tuple[subprocess.Popen[bytes], int]:
    """A listener alone in a process (its RSS and its descriptors are its own), logging JSON lines to
    ``tmp_path/listener.log``; it stops when its stdin closes."""
    root = Path(__file__).resolve().parents[3]
    with open(tmp_path / "listener.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _LISTENER, str(tmp_path), str(idle_timeout), "starve" if starve else "-"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.slow
def test_memory_of_open_frames_is_given_back_after_idle_timeout(tmp_path: Path) -> None:
    proc, port = _listener_process(tmp_path, idle_timeout=2.0)
    try:
        idle = _rss_mb(proc.pid)
        partial = b"\x0bMSH|^~\\&|LOADGEN|TEST|ENJOURNAL|HOSP|20240102030405||ADT^A01|OPEN|P|2.5\r" + b"x" * 1_000_000
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        for s in socks:
            s.sendall(partial)
        assert _until(lambda: _rss_mb(proc.pid) > idle + 150)  # about 200 MB of open frames held
        assert [_closed_by_server(s) for s in socks] == [b""] * 200
        for s in socks:
            s.close()
        assert _until(lambda: _rss_mb(proc.pid) < idle + 40)  # closed, and the memory given back
    finally:
        proc.communicate(timeout=60)


@pytest.mark.slow
def test_descriptor_exhaustion_does_not_stop_the_listener(tmp_path: Path) -> None:
    proc, port = _listener_process(tmp_path, starve=True)
    try:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(80)]  # more than it may open
        time.sleep(2.5)  # the listener runs out of descriptors and backs off
        assert proc.poll() is None
        for s in held:
            s.close()
        with MllpClient("127.0.0.1", port, timeout=20) as c:  # served again once descriptors are free
            assert c.send(synthetic_adt(30))[0].code == "AA"
        time.sleep(3.5)  # accepting without a failure for a while ends the episode
        assert proc.poll() is None
    finally:
        proc.communicate(timeout=60)  # closes its stdin: the listener stops
    err = (tmp_path / "listener.log").read_text()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    events = [e["event"] for e in lines]
    assert "Traceback" not in err
    assert events.count("mllp.accept_starved") == 1 and events.count("mllp.accept_resumed") == 1
    assert not [e for e in events if e == "mllp.loop_error"]
    assert len(lines) < 200  # one line per connection and per state change, no flood


def _open_gauge(adapter: str) -> float:
    return metrics.current().registry.get_sample_value("enjournal_mllp_connections", {"adapter": adapter}) or 0.0


def test_the_open_connections_and_their_gauge_are_one_count(bus: EmbeddedBus, store: Store) -> None:
    """A connection still waiting for a commit when the drain times out is cancelled: it leaves the count
    and the gauge like any other."""
    before = _open_gauge("mllp-test")
    with listening(bus, store, ack_after="commit", commit_timeout=60, drain_timeout=0.5) as a:
        waiting = MllpClient("127.0.0.1", a.port)
        idle = MllpClient("127.0.0.1", a.port)
        waiting.write(encode(synthetic_adt(300)))  # no worker: its AA waits for a commit that never comes
        assert _until(lambda: a.open_connections == 2 and _open_gauge("mllp-test") == before + 2)
    assert a.open_connections == 0 and _open_gauge("mllp-test") == before
    assert _closed_by_server(waiting.sock) == b"" and _closed_by_server(idle.sock) == b""
    waiting.close()
    idle.close()


@pytest.fixture
def tls_contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate, and a client context that trusts it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not available")
    crt, key = tmp_path / "s.crt", tmp_path / "s.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(crt),
        ],
        check=True,
        capture_output=True,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(crt, key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.load_verify_locations(crt)
    return server, client


class _Served:
    """Records in ``served`` that a connection got past its handshake."""

    def __init__(self, writer: asyncio.StreamWriter, served: list[int]) -> None:
        self.writer, self.served = writer, served

    async def serve(self) -> None:
        self.served.append(1)
        self.writer.close()


def test_close_cancels_the_handshakes_still_running(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    """A TLS handshake that would finish after the listener stopped accepting is cancelled: the connection
    is never served (its messages could not be published any more), and it leaves the count."""
    server_ctx, client_ctx = tls_contexts
    served: list[int] = []
    before = _open_gauge("mllp-tls-test")

    async def go() -> tuple[str, int]:
        acceptor = Acceptor(
            "mllp-tls-test",
            bind("127.0.0.1", 0, backlog=8),
            lambda _r, w: _Served(w, served),
            max_connections=4,
            ssl_context=server_ctx,
        )
        acceptor.start()
        raw = socket.create_connection(("127.0.0.1", acceptor.port))  # connected; its handshake not begun
        while acceptor.open == 0:
            await asyncio.sleep(0.01)
        acceptor.close()
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.run_in_executor(None, lambda: client_ctx.wrap_socket(raw, server_hostname="localhost"))
            tls.close()
            outcome = "handshake completed"
        except (OSError, ssl.SSLError) as exc:
            raw.close()
            outcome = type(exc).__name__
        while acceptor.open:
            await asyncio.sleep(0.01)
        return outcome, acceptor.open

    outcome, still_open = asyncio.run(go())
    assert outcome != "handshake completed" and served == [] and still_open == 0
    assert _open_gauge("mllp-tls-test") == before
