"""Monitoring costs nothing (issue #18, item 12), against RabbitMQ and PostgreSQL.

* Many parallel scrapes of ``/metrics`` and ``/status`` run no count on the database (every SQL statement
  is seen by a SQLAlchemy event listener on the real store) and one broker round trip per cache period.
* ``/metrics`` is valid Prometheus text (prometheus_client's parser; ``promtool check metrics`` too when
  it is installed), and its counters move when envelopes are published and committed through a real
  adapter and worker, also when the workers are separate processes.
* ``/health`` is 503 listing what is down (a service, the bus), 200 when all is well; ``/health/live`` 200.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from bench.data import adt_a08, patients
from engine.bus.rabbit import RabbitBus
from engine.config import RabbitBusConfig, parse_config
from engine.envelope import Envelope
from engine.ops import serve
from engine.runtime import Runtime
from engine.store import Store
from engine.supervise import Health
from tests.conftest import REQUIRE
from tests.helpers import unreachable_rabbit_bus
from tests.integration.pipeline_util import TEST_MAPPING, bus_section, engine_process, make_envelopes, write_config

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]
HEAVY_TABLES = ("record_versions", "raw_archive", "dead_letters", "identity_conflicts", "identifiers")


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


def _wait(pred: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.1)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text by (name, labels); parsing fails on invalid text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _promtool(text: str, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if REQUIRE:
            pytest.fail("promtool is required under ENJOURNAL_REQUIRE_SERVICES=1 (.ci/run provides it)")
        return  # Debian package ``prometheus``; prometheus_client's parser has checked the text already
    (tmp_path / "metrics.txt").write_text(text)
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


@dataclass
class Engine:
    runtime: Runtime
    port: int
    statements: list[str]


@pytest.fixture
def engine(tmp_path: Path, pg_url: str, amqp_names: dict[str, str]) -> Iterator[Engine]:
    """An engine in this process: an hl7-file adapter and one worker on RabbitMQ + PostgreSQL, the ops API
    on, every SQL statement of its store recorded."""
    port = _free_port()
    cfg = parse_config(
        {
            "bus": bus_section("rabbitmq", tmp_path, amqp_names),
            "store": {"url": pg_url},
            "ops": {"port": port},
            "workers": {"batch_wait_ms": 10},
            "adapters": {
                "lab": {
                    "type": "hl7-file",
                    "mapping": "hl7v2",
                    "directory": str(tmp_path / "in"),
                    "stable_seconds": 0,
                    "poll_interval": 0.05,
                }
            },
        }
    )
    rt = Runtime.build(cfg)
    statements: list[str] = []
    engines = [e for e in (rt.store.engine, getattr(rt.store, "_reads", None)) if e is not None]

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    for e in engines:
        sa.event.listen(e, "before_cursor_execute", seen)
    rt.start()
    try:
        yield Engine(rt, port, statements)
    finally:
        assert rt.shutdown(20)
        for e in engines:
            sa.event.remove(e, "before_cursor_execute", seen)
        RabbitBus(cfg.bus).delete_topology()


def test_parallel_scrapes_run_no_count_and_one_broker_call_per_period(engine: Engine) -> None:
    depth_calls: list[float] = []
    real_depth = engine.runtime.bus.depth

    def counted_depth() -> dict[str, int]:
        depth_calls.append(time.monotonic())
        return real_depth()

    engine.runtime.bus.depth = counted_depth  # type: ignore[method-assign]  # counts calls to the real broker
    _wait(lambda: _get(engine.port, "/health")[0] == 200, "the engine to be ready")
    engine.statements.clear()
    results: list[int] = []

    def scrape() -> None:
        for i in range(10):
            results.append(_get(engine.port, "/metrics" if i % 2 else "/status")[0])

    started = time.monotonic()
    threads = [threading.Thread(target=scrape) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    periods = 1 + int((time.monotonic() - started) / 2.0)  # the reachability check's cache period
    assert results == [200] * 60
    assert not [s for s in engine.statements if any(t in s for t in HEAVY_TABLES)], engine.statements
    assert len(engine.statements) <= 2 * periods, engine.statements  # SELECT 1 (+ its transaction), cached
    assert 1 <= len(depth_calls) <= 1 + int((time.monotonic() - started) / 5.0)

    code, body = _get(engine.port, "/status?counts=1")
    counts = json.loads(body)["counts"]
    assert code == 200 and set(counts) >= {"received", "records", "dead_letters", "conflicts"}
    assert any("record_versions" in s for s in engine.statements)  # only on request


def test_metrics_parse_and_move_with_published_and_committed_envelopes(engine: Engine, tmp_path: Path) -> None:
    before = _samples(_get(engine.port, "/metrics")[1])
    p = patients(3)
    inbox = tmp_path / "in"
    (inbox / "two.tmp").write_bytes(adt_a08(1, p[0]) + adt_a08(2, p[1]))
    (inbox / "two.tmp").rename(inbox / "two.hl7")
    bad = Envelope.build(b"BAD", adapter="direct", mapping=TEST_MAPPING, content_type="text/plain")
    engine.runtime.bus.publish([*make_envelopes(5, adapter="direct"), bad])

    def committed() -> bool:
        now = _samples(_get(engine.port, "/metrics")[1])
        return (
            _value(now, "enjournal_envelopes_committed_total", adapter="lab")
            - _value(before, "enjournal_envelopes_committed_total", adapter="lab")
            == 2
            and _value(now, "enjournal_envelopes_committed_total", adapter="direct")
            - _value(before, "enjournal_envelopes_committed_total", adapter="direct")
            == 5
        )

    _wait(committed, "7 envelopes committed")
    code, text = _get(engine.port, "/metrics")
    after = _samples(text)
    assert code == 200
    _promtool(text, tmp_path)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("enjournal_envelopes_published_total", adapter="lab") == 2
    assert moved("enjournal_dead_letters_total", adapter="direct", code="TEST_BAD_MESSAGE") == 1
    assert moved("enjournal_batch_commit_seconds_count") >= 1
    assert _value(after, "enjournal_last_received_timestamp_seconds", adapter="lab") > time.time() - 120
    assert _value(after, "enjournal_ready") == 1 and _value(after, "enjournal_up", component="bus") == 1
    # broker figures are cached for a few seconds: the first scrape may predate the worker's consumer
    _wait(
        lambda: _value(_samples(_get(engine.port, "/metrics")[1]), "enjournal_queue_consumers") >= 1,
        "the worker's consumer counted",
    )
    assert ("enjournal_queue_depth", (("queue", "work"),)) in after

    status = json.loads(_get(engine.port, "/status")[1])
    assert status["ready"] is True and status["since_start"]["committed"]["lab"] >= 2
    assert status["queue"]["consumers"] >= 1 and "counts" not in status


def test_metrics_count_across_worker_processes(tmp_path: Path, pg_url: str, amqp_names: dict[str, str]) -> None:
    port = _free_port()
    bus = bus_section("rabbitmq", tmp_path, amqp_names)
    config = write_config(
        tmp_path, bus, pg_url, workers={"count": 1, "processes": 2, "in_intake_process": False, "batch_wait_ms": 10}
    )
    doc = parse_config({**__import__("yaml").safe_load(config.read_text()), "ops": {"port": port}})
    config.write_text(__import__("yaml").safe_dump(doc.model_dump(mode="json")))
    proc = engine_process(config, log=tmp_path / "engine.log")
    publisher = RabbitBus(RabbitBusConfig(**bus))
    try:
        _wait(lambda: _ready(port), "the engine's ops API", limit=60)
        publisher.publish(make_envelopes(40, adapter="procs"))
        _wait(
            lambda: (
                _value(_samples(_get(port, "/metrics")[1]), "enjournal_envelopes_committed_total", adapter="procs")
                == 40
            ),
            "40 envelopes committed by the worker processes",
        )
        text = _get(port, "/metrics")[1]
        _promtool(text, tmp_path)
        assert _value(_samples(text), "enjournal_batch_commit_seconds_count") >= 1
        status = json.loads(_get(port, "/status")[1])
        assert status["since_start"]["committed"]["procs"] == 40
    finally:
        proc.terminate()
        proc.wait(60)
        publisher.delete_topology()
        publisher.close()
    assert proc.returncode == 0, (tmp_path / "engine.log").read_text()[-3000:]


def _ready(port: int) -> bool:
    try:
        return _get(port, "/health/live")[0] == 200
    except OSError:
        return False


@dataclass
class _Runtime:
    """What the ops API reads of an engine: a real bus and store, and the services' states as given."""

    bus: Any
    store: Store
    services: dict[str, str]

    def health(self) -> Health:
        return Health(services=self.services)


def test_health_is_503_listing_what_is_down(pg_url: str, rabbit_bus: Any, amqp_names: dict[str, str]) -> None:
    store = Store(pg_url)
    dead_bus = unreachable_rabbit_bus(amqp_names, connect_timeout=1.0)
    cases = [
        ({"worker-0": "running", "adapter-lab": "running"}, rabbit_bus, 200, []),
        ({"worker-0": "running", "adapter-lab": "restarting"}, rabbit_bus, 503, ["adapter-lab"]),
        ({"worker-0": "failed"}, dead_bus, 503, ["worker-0", "bus"]),
    ]
    try:
        for services, bus, code, down in cases:
            port = _free_port()
            server = serve(_Runtime(bus, store, services), "127.0.0.1", port)
            try:
                got, body = _get(port, "/health")
                live, _ = _get(port, "/health/live")
            finally:
                server.shutdown()
                server.server_close()
            doc = json.loads(body)
            assert (got, live, doc.get("down", [])) == (code, 200, down), doc
            assert doc["services"] == services and doc["store"] == "ok"
    finally:
        dead_bus.close()
        store.close()
