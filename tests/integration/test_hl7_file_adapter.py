"""The HL7 file adapter on the real RabbitMQ bus, the real store and the worker.

A file is archived only after the broker confirmed every message in it; a bad message is
dead-lettered with its reason while the good ones reach the journal; with the broker unreachable
the file stays where it is.
"""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from adapters.hl7_file import Settings, build
from adapters.mllp.client import synthetic_adt
from engine.bus.rabbit import RabbitBus
from engine.config import RabbitBusConfig
from engine.store import Store
from tests.helpers import ack_code
from tests.unit.mllp.helpers import Runtime, run_worker

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def bus(rabbit_bus: RabbitBus) -> RabbitBus:
    return rabbit_bus


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


def adapter(tmp_path: Path, bus: Any, store: Store, **kw: Any) -> Any:
    s = Settings(type="hl7-file", directory=tmp_path / "in", stable_seconds=0, source_system="lab", **kw)
    a = build("lab-files", s, Runtime(bus, store))
    a.settings.ensure_dirs()  # run() creates them; check() creates nothing
    a.check()
    return a


def test_bad_message_dead_lettered_good_ones_journaled(tmp_path: Path, bus: RabbitBus, store: Store) -> None:
    a = adapter(tmp_path, bus, store)
    f = a.settings.directory / "mixed.hl7"
    f.write_bytes(synthetic_adt(1) + synthetic_adt(2, message_type="ORM") + synthetic_adt(3))
    a.handle(f)
    assert not f.exists() and (a.settings.archive / "mixed.hl7").exists()
    assert (a.settings.archive / "mixed.hl7.reason").read_text().startswith("message 1: HL7_UNSUPPORTED_TYPE")
    assert bus.depth()["work"] == 1  # archived only once confirmed: the file's three envelopes in one frame
    run_worker(bus, store, 3)
    assert store.counts()["received"] == {"lab-files": 3}
    assert [d["reason_code"] for d in store.dead_letters()] == ["HL7_UNSUPPORTED_TYPE"]
    assert ack_code(store, "HL7|LOADGEN|TEST|MSG00000003") == "AA"


def test_file_stays_while_the_broker_is_unreachable(
    tmp_path: Path, sqlite_url: str, amqp_names: dict[str, str], rabbit_url: str
) -> None:
    store = Store(sqlite_url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    down = RabbitBus(RabbitBusConfig(url=f"amqp://guest@127.0.0.1:{dead_port}/%2F", **amqp_names), connect_timeout=1.0)
    try:
        a = adapter(tmp_path, down, store)
        f = a.settings.directory / "one.hl7"
        f.write_bytes(synthetic_adt(1))
        a.handle(f)
        assert f.exists() and not any(a.settings.archive.iterdir())
    finally:
        down.close()
        store.close()


def test_a_file_whose_move_fails_is_published_once(tmp_path: Path, bus: RabbitBus, store: Store) -> None:
    """Every message confirmed, then archive/ cannot take the file: only the move is retried (after a
    backoff from poll_interval, logged once per episode), the messages are not published again."""
    a = adapter(tmp_path, bus, store, poll_interval=0.05)
    archive = a.settings.archive
    archive.rmdir()
    archive.write_bytes(b"not a directory")  # the move fails even for root
    f = a.settings.directory / "two.hl7"
    f.write_bytes(synthetic_adt(1) + synthetic_adt(2))
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            a.handle(f)
            time.sleep(0.2)  # past the backoff: the move is tried again each time
        assert f.exists() and bus.depth()["work"] == 1  # one frame: published once
        archive.unlink()
        archive.mkdir()
        a.handle(f)
    assert [e["event"] for e in logs if e["event"].startswith("archive.")] == [
        "archive.unavailable",
        "archive.available",
    ]
    assert next(e for e in logs if e["event"] == "archive.available")["failed_attempts"] == 3
    assert not f.exists() and (archive / "two.hl7").exists()
    run_worker(bus, store, 2)
    assert store.counts()["received"] == {"lab-files": 2}


def test_files_without_a_message_are_archived_and_dead_lettered(tmp_path: Path, bus: RabbitBus, store: Store) -> None:
    """An empty file and one of random bytes: each published once with its bytes, archived raw and
    dead-lettered with HL7_NO_MSH (what ops see and replay), and moved to error/ with its .reason file."""
    a = adapter(tmp_path, bus, store, incomplete_grace_seconds=0)
    files = {"empty.hl7": b"", "random.hl7": random.Random(19).randbytes(512)}
    for name, content in files.items():
        f = a.settings.directory / name
        f.write_bytes(content)
        a.handle(f)
        assert not f.exists() and (a.settings.errors / name).read_bytes() == content
        assert (a.settings.errors / f"{name}.reason").read_text().startswith("HL7_NO_MSH")
    run_worker(bus, store, 2)
    dead = store.dead_letters()
    assert sorted(d["reason_code"] for d in dead) == ["HL7_NO_MSH", "HL7_NO_MSH"]
    archived = [store.archived(d["envelope_id"]) for d in dead]
    assert sorted((e.attributes["file"], e.raw) for e in archived if e is not None) == sorted(files.items())


def test_a_file_without_a_message_stays_while_the_broker_is_unreachable(
    tmp_path: Path, sqlite_url: str, amqp_names: dict[str, str]
) -> None:
    store = Store(sqlite_url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    down = RabbitBus(RabbitBusConfig(url=f"amqp://guest@127.0.0.1:{dead_port}/%2F", **amqp_names), connect_timeout=1.0)
    try:
        a = adapter(tmp_path, down, store, incomplete_grace_seconds=0)
        f = a.settings.directory / "empty.hl7"
        f.write_bytes(b"")
        a.handle(f)
        assert f.exists() and not any(a.settings.errors.iterdir())
    finally:
        down.close()
        store.close()
