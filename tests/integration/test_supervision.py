"""Services are supervised (issue 18, item 2), on the real RabbitMQ and PostgreSQL.

A worker that crashes gives its unacknowledged deliveries back to the queue (they count toward the
quorum queue's delivery limit) and is restarted; an adapter whose ``run`` raises is restarted with
backoff and ``Runtime.health()`` shows it meanwhile; a worker process killed with SIGKILL is restarted
with backoff; and the engine's stop is not clean after any crash.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import adapters.hl7_file
from adapters.mllp.client import synthetic_adt
from engine.bus.rabbit import RabbitBus
from engine.config import RabbitBusConfig, parse_config
from engine.outcome import BatchStats, Outcome
from engine.runtime import Runtime
from engine.store import Store
from engine.supervise import Backoff, Supervisor
from engine.worker import Mapper, Worker
from tests.integration.pipeline_util import bus_section, engine_process, make_envelopes, write_config

pytestmark = pytest.mark.rabbitmq


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


class BrokenStore:
    """A store whose commit raises an error nobody planned for while ``broken`` is set (a bug, not an outage)."""

    def __init__(self, store: Store) -> None:
        self.store, self.broken = store, threading.Event()
        self.broken.set()

    def commit_batch(self, outcomes: Sequence[Outcome]) -> BatchStats:
        if self.broken.is_set():
            raise ZeroDivisionError("a bug in the store")
        return self.store.commit_batch(outcomes)


@pytest.fixture
def quorum_bus(rabbit_url: str, amqp_names: dict[str, str]) -> Iterator[RabbitBus]:
    b = RabbitBus(
        RabbitBusConfig(url="amqp://guest@127.0.0.1:5672/%2F", queue_type="quorum", delivery_limit=5, **amqp_names)
    )
    b.declare()
    yield b
    b.delete_topology()
    b.close()


def test_a_crashed_worker_gives_its_deliveries_back_and_is_restarted(quorum_bus: RabbitBus, pg_url: str) -> None:
    store = Store(pg_url)
    broken = BrokenStore(store)
    worker = Worker(quorum_bus, broken, Mapper(), batch_size=100, batch_wait=0.05)  # type: ignore[arg-type]
    sup, stop = Supervisor(Backoff(first=3.0)), threading.Event()
    try:
        quorum_bus.publish(make_envelopes(10), framed=False)
        sup.spawn("worker-0", worker.run, stop)
        assert wait_for(lambda: sup.states()["worker-0"] == "restarting")
        # the crashed worker's consumer is closed: its 10 deliveries are ready again, nobody consumes
        assert wait_for(lambda: quorum_bus.depth()["work"] == 10, 2.5)
        assert quorum_bus.depth()["consumers"] == 0
        probe = quorum_bus.consumer(100)
        got = probe.fetch(100, 2.0)
        assert len(got) == 10 and all(d.delivery_count >= 1 for d in got)  # counted toward the delivery limit
        probe.close()
        broken.broken.clear()
        assert wait_for(lambda: sum(store.counts()["received"].values()) == 10)
        assert sup.states()["worker-0"] == "running" and sup.crashes == 1
        assert quorum_bus.depth()["consumers"] == 1 and not store.dead_letters()
    finally:
        stop.set()
        sup.join(time.monotonic() + 10)
        store.close()


def test_a_crashing_adapter_is_restarted_and_the_stop_is_not_clean(
    tmp_path: Path, rabbit_url: str, pg_url: str, amqp_names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = adapters.hl7_file.Hl7FileAdapter.run, []

    def failing_twice(self: Any, stop: threading.Event) -> None:  # an adapter bug, twice
        calls.append(1)
        if len(calls) <= 2:
            raise IsADirectoryError("the inbox went away")
        real(self, stop)

    monkeypatch.setattr(adapters.hl7_file.Hl7FileAdapter, "run", failing_twice)
    inbox = tmp_path / "in"
    cfg = parse_config(
        {
            "bus": bus_section("rabbitmq", tmp_path, amqp_names),
            "store": {"url": pg_url},
            "workers": {"count": 1, "batch_wait_ms": 20},
            "adapters": {
                "lab": {"type": "hl7-file", "directory": str(inbox), "stable_seconds": 0, "poll_interval": 0.1}
            },
        }
    )
    rt = Runtime.build(cfg)
    rt.supervisor = Supervisor(Backoff(first=0.3))
    states: set[str] = set()
    try:
        rt.start()
        assert wait_for(lambda: states.add(rt.health().services["adapter-lab"]) or len(calls) >= 3)
        assert "restarting" in states
        assert wait_for(lambda: rt.health().ready)
        assert rt.health().services == {"worker-0": "running", "adapter-lab": "running"}
        (inbox / "a.hl7").write_bytes(synthetic_adt(1) + synthetic_adt(2))
        assert wait_for(lambda: rt.store.counts()["received"].get("lab") == 2)
    finally:
        clean = rt.shutdown(20)
        rt.bus.delete_topology()  # type: ignore[attr-defined]
    assert clean is False and rt.crashes == 2
    assert set(rt.health().services.values()) == {"stopped"}


def _events(log: Path, name: str) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            out.append(json.loads(line))
    return out


@pytest.mark.slow
def test_a_killed_worker_process_is_restarted_with_backoff_and_run_exits_unclean(
    tmp_path: Path, rabbit_url: str, pg_url: str, amqp_names: dict[str, str]
) -> None:
    bus = bus_section("rabbitmq", tmp_path, amqp_names)
    config = write_config(tmp_path, bus, pg_url, workers={"count": 1, "processes": 2, "batch_wait_ms": 20})
    log = tmp_path / "engine.log"
    proc = engine_process(config, log=log)
    rt = Runtime.build(parse_config({"bus": bus, "store": {"url": pg_url}}))
    try:
        for kill in range(2):
            assert wait_for(lambda k=kill: len(_events(log, "worker_process.started")) > k, 60, 0.1), log.read_text()
            os.kill(_events(log, "worker_process.started")[-1]["pid"], signal.SIGKILL)
            assert wait_for(lambda k=kill: len(_events(log, "service.restarted")) > k, 30, 0.1)
        crashed = _events(log, "service.crashed")
        assert [(e["service"], e["error_type"]) for e in crashed] == [("worker-process-0", "SIGKILL")] * 2
        assert [e["after_s"] for e in _events(log, "service.restarted")] == [0.5, 1.0]  # backoff doubles
        assert wait_for(lambda: len(_events(log, "worker_process.started")) == 3, 60, 0.1)
        rt.bus.publish(make_envelopes(50))
        assert wait_for(lambda: sum(rt.store.counts()["received"].values()) == 50, 60, 0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 1  # the run had crashes: not clean
        stopped = _events(log, "engine.stopped")
        assert stopped and stopped[-1]["clean"] is False and stopped[-1]["crashes"] == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        rt.bus.delete_topology()  # type: ignore[attr-defined]
        rt.close()


def test_an_embedded_consumer_gives_back_what_it_held_when_closed(tmp_path: Path) -> None:
    from engine.bus.embedded import EmbeddedBus

    bus = EmbeddedBus(tmp_path / "q.db", lease_seconds=600)
    try:
        bus.publish(make_envelopes(5))
        c = bus.consumer()
        first = c.fetch(10, 1.0)
        c.ack(first[:2])
        c.close()  # a crashed worker's consumer: the 3 it held are leased for 600 s otherwise
        again = bus.consumer().fetch(10, 1.0)
        assert [d.envelope.id for d in again] == [d.envelope.id for d in first[2:]]
        assert all(d.delivery_count == 1 for d in again)  # delivered once before: counted
    finally:
        bus.close()
