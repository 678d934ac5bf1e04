"""The ops API when a figure cannot be had (issue 18, item 12), on the embedded bus and a SQLite store.

A store or a bus that raises its client library's own error (SQLAlchemy, sqlite3), not an engine error, is
answered as ``{"error": <type>}``; a handler that fails anyway answers 500 and is logged by type, never
printed as a traceback by ``http.server``. The ops API starts only once every adapter of the engine
exists, so ``/health`` never answers ready without them.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from engine import ops
from engine.bus.embedded import EmbeddedBus
from engine.config import parse_config
from engine.runtime import Runtime
from engine.status import Monitor, broker_figures
from engine.store import Store
from engine.supervise import Health
from tests.integration.pipeline_util import bus_section


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@dataclass
class _Runtime:
    """What the ops API reads of an engine: a real bus and store, and the services' states as given."""

    bus: Any
    store: Store
    healthy: bool = True

    def health(self) -> Health:
        if not self.healthy:
            raise RuntimeError("a bug in a health check, quoting 01010112345")
        return Health(services={"worker-0": "running"})


def _drop(db: Path, table: str) -> None:
    """Drop ``table`` behind the component's back: its next query fails with sqlite3's own error."""
    with sqlite3.connect(db) as c:
        c.execute(f"DROP TABLE {table}")


def test_store_and_bus_errors_of_their_own_libraries_are_answered_as_errors(tmp_path: Path) -> None:
    bus, store = EmbeddedBus(tmp_path / "queue.db"), Store(f"sqlite:///{tmp_path / 'journal.db'}")
    try:
        _drop(tmp_path / "queue.db", "queue")
        _drop(tmp_path / "journal.db", "dead_letters")
        assert broker_figures(bus) == {"error": "OperationalError"}
        status = Monitor(_Runtime(bus, store)).status(with_counts=True)
        assert status["queue"] == {"error": "OperationalError"} and status["counts"] == {"error": "OperationalError"}
        port = _free_port()
        server = ops.serve(_Runtime(bus, store), "127.0.0.1", port)
        try:
            code, body = _get(port, "/status?counts=1")
        finally:
            server.shutdown()
            server.server_close()
        assert code == 200 and json.loads(body)["counts"] == {"error": "OperationalError"}
    finally:
        bus.close()
        store.close()


def test_a_failing_handler_answers_500_logged_by_type_without_a_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bus, store = EmbeddedBus(tmp_path / "queue.db"), Store(f"sqlite:///{tmp_path / 'journal.db'}")
    port = _free_port()
    server = ops.serve(_Runtime(bus, store, healthy=False), "127.0.0.1", port)
    try:
        with capture_logs() as events:
            code, body = _get(port, "/health")
            live, _ = _get(port, "/health/live")
    finally:
        server.shutdown()
        server.server_close()
        bus.close()
        store.close()
    assert (code, body, live) == (500, "internal error\n", 200)
    assert [(e["event"], e["error_type"], e["path"]) for e in events] == [
        ("ops.request_failed", "RuntimeError", "/health")
    ]
    err = capfd.readouterr().err
    assert "Traceback" not in err and "01010112345" not in err


def test_the_ops_api_starts_after_the_adapters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config(
        {
            "bus": bus_section("embedded", tmp_path),
            "store": {"url": f"sqlite:///{tmp_path / 'j.db'}"},
            "ops": {"port": _free_port()},
            "adapters": {
                name: {"type": "hl7-file", "directory": str(tmp_path / name), "poll_interval": 0.05}
                for name in ("lab", "ward")
            },
        }
    )
    seen: list[dict[str, str]] = []
    real_serve = ops.serve

    def serve(runtime: Any, host: str, port: int) -> Any:
        seen.append(runtime.health().services)  # what the first /health could answer
        return real_serve(runtime, host, port)

    monkeypatch.setattr(ops, "serve", serve)
    rt = Runtime.build(cfg)
    rt.start()
    try:
        assert len(seen) == 1 and {"adapter-lab", "adapter-ward", "worker-0"} <= set(seen[0])
    finally:
        assert rt.shutdown(10)
