"""The spine end to end on the real components: bus (RabbitMQ and embedded) -> worker -> store."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine.config import parse_config
from engine.envelope import Envelope
from engine.rejection import Rejection
from engine.runtime import Runtime
from engine.store.journal import current_versions
from tests.integration.pipeline_util import bus_section, engine_process, make_envelopes, write_config

BUSES = ["embedded", "rabbitmq"]


@pytest.fixture(params=BUSES)
def bus_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "rabbitmq":
        request.getfixturevalue("rabbit_url")
    return request.param  # type: ignore[no-any-return]


def _runtime(bus_kind: str, tmp: Path, store_url: str, names: dict[str, str]) -> Runtime:
    cfg = parse_config(
        {
            "bus": bus_section(bus_kind, tmp, names),
            "store": {"url": store_url},
            "workers": {"batch_size": 200, "batch_wait_ms": 20},
        }
    )
    return Runtime.build(cfg)


def _drain(rt: Runtime, seconds: float = 60) -> None:
    worker = rt.build_worker()
    stop = threading.Event()
    end = time.monotonic() + seconds
    consumer = rt.bus.consumer(1000)
    try:
        idle = 0
        while time.monotonic() < end and idle < 3:
            idle = idle + 1 if worker.step(consumer) == 0 else 0
    finally:
        consumer.close()
    stop.set()


def test_messages_flow_once_and_bad_ones_are_dead_lettered(
    bus_kind: str, tmp_path: Path, store_url: str, amqp_names: dict[str, str]
) -> None:
    rt = _runtime(bus_kind, tmp_path, store_url, amqp_names)
    try:
        good = make_envelopes(600)
        bad = Envelope.build(b"BAD", adapter="test", mapping="tests.e2e_mapping:map_message", content_type="x")
        rejected = Envelope.build(
            b"MSH|",
            adapter="test",
            mapping="hl7v2",
            content_type="x",
            rejection=Rejection(code="HL7_BAD_MSH", text="no encoding characters"),
        )
        # as the previous version published a rejection: an attribute, read as a rejection on the way
        legacy = Envelope.build(
            b"MSH|", adapter="test", mapping="hl7v2", content_type="x", attributes={"reject": "HL7_NO_MSH: none"}
        )
        rt.bus.publish(good[:300] + [bad, rejected, legacy])
        rt.bus.publish(good[300:] + good[:100])  # redelivery of 100: changes nothing
        _drain(rt)
        cur, hist = current_versions(rt.store.all_versions())
        obs = [r for r in cur if r["kind"] == "observation"]
        assert len(obs) == 600 and not hist
        assert len([r for r in cur if r["kind"] == "person"]) == 50
        dead = {r["envelope_id"]: r["reason_code"] for r in rt.store.dead_letters()}
        assert dead == {bad.id: "TEST_BAD_MESSAGE", rejected.id: "HL7_BAD_MSH", legacy.id: "HL7_NO_MSH"}
        reasons = {r["envelope_id"]: r["reason"] for r in rt.store.dead_letters()}
        assert (reasons[rejected.id], reasons[legacy.id]) == ("HL7_BAD_MSH: no encoding characters", "HL7_NO_MSH: none")
        assert rt.store.archived(bad.id).raw == b"BAD"
        assert rt.bus.depth()["work"] == 0
        citizen = rt.store.citizen("L7")
        assert citizen is not None and citizen.best.kind == "FNR"
    finally:
        if bus_kind == "rabbitmq":
            rt.bus.delete_topology()  # type: ignore[attr-defined]
        rt.close()


@pytest.mark.slow
def test_kill9_of_the_worker_loses_nothing(
    bus_kind: str, tmp_path: Path, store_url: str, amqp_names: dict[str, str]
) -> None:
    bus = bus_section(bus_kind, tmp_path, amqp_names)
    config = write_config(tmp_path, bus, store_url, workers={"count": 1, "batch_size": 100, "batch_wait_ms": 5})
    rt = Runtime.build(parse_config({"bus": bus, "store": {"url": store_url}}))
    try:
        envs = make_envelopes(3000)
        for i in range(0, len(envs), 500):
            rt.bus.publish(envs[i : i + 500])
        kills = 0
        for _ in range(3):
            proc = engine_process(config, log=tmp_path / "engine.log")
            time.sleep(2.5)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
        final = engine_process(config, "--until-idle", log=tmp_path / "engine.log")
        assert final.wait(120) == 0
        cur, hist = current_versions(rt.store.all_versions())
        obs = [r for r in cur if r["kind"] == "observation"]
        assert len(obs) == 3000, f"lost {3000 - len(obs)} after {kills} kills"
        assert not hist and not rt.store.dead_letters()
    finally:
        if bus_kind == "rabbitmq":
            rt.bus.delete_topology()  # type: ignore[attr-defined]
        rt.close()


def test_sigterm_drains_and_exits_zero(tmp_path: Path, sqlite_url: str) -> None:
    bus = bus_section("embedded", tmp_path)
    config = write_config(tmp_path, bus, sqlite_url)
    rt = Runtime.build(parse_config({"bus": bus, "store": {"url": sqlite_url}}))
    try:
        rt.bus.publish(make_envelopes(2000))
        log = tmp_path / "engine.log"
        proc = engine_process(config, log=log)
        end = time.monotonic() + 60
        while "engine.started" not in (log.read_text() if log.exists() else "") and time.monotonic() < end:
            time.sleep(0.1)
        time.sleep(0.5)  # let the worker take a batch: SIGTERM under load
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        rt.close()


@pytest.mark.parametrize(
    "placement",
    [{"processes": 2}, {"processes": 1, "in_intake_process": False}],
    ids=["beside-intake", "apart-from-intake"],
)
def test_worker_processes_share_the_queue(tmp_path: Path, sqlite_url: str, placement: dict[str, Any]) -> None:
    bus = bus_section("embedded", tmp_path)
    config = write_config(
        tmp_path, bus, sqlite_url, workers={"count": 1, "batch_size": 100, "batch_wait_ms": 5, **placement}
    )
    rt = Runtime.build(parse_config({"bus": bus, "store": {"url": sqlite_url}}))
    try:
        rt.bus.publish(make_envelopes(2000))
        proc = engine_process(config, "--until-idle", log=tmp_path / "engine.log")
        assert proc.wait(120) == 0
        cur, hist = current_versions(rt.store.all_versions())
        assert len([r for r in cur if r["kind"] == "observation"]) == 2000 and not hist
        assert "worker_process.started" in (tmp_path / "engine.log").read_text()
    finally:
        rt.close()
