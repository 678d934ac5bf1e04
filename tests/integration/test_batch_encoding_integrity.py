"""Batch and encoding integrity through the real pipeline (RabbitMQ + PostgreSQL + the worker).

A FHS/BHS file cut mid-PID: the cut message is dead-lettered (HL7_BATCH_TRUNCATED), never mapped into a
new, false citizen; BTS|5 with 2 messages: both are journaled and the mismatch is a dead letter; a message
over the limit is dead-lettered without its bytes; bytes outside the declared charset (Windows-1252 in
an HL7 message declaring 8859/1, UTF-8 in a KITH file declaring ISO-8859-1) are stored as the letters
they are, and flagged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from lxml import etree

from adapters.hl7_file import Settings, build
from adapters.kith_file import Settings as KithSettings
from adapters.kith_file import build as build_kith
from adapters.mllp.client import synthetic_adt
from engine.bus.rabbit import RabbitBus
from engine.store import Store
from engine.worker import Mapper, Worker
from tests.conftest import FIXTURES
from tests.unit.mllp.helpers import Runtime, run_worker

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def store(pg_url: str) -> Any:
    s = Store(pg_url)
    yield s
    s.close()


def hl7_adapter(tmp_path: Path, bus: RabbitBus, store: Store, **kw: Any) -> Any:
    s = Settings(
        type="hl7-file",
        directory=tmp_path / "in",
        stable_seconds=0,
        source_system="lab",
        incomplete_grace_seconds=0,
        **kw,
    )
    a = build("lab-files", s, Runtime(bus, store))
    a.settings.ensure_dirs()  # run() creates them; check() creates nothing
    a.check()
    return a


def batch(*msgs: bytes, trailer: bytes = b"") -> bytes:
    return b"FHS|^~\\&|LAB|OUS\rBHS|^~\\&|LAB|OUS\r" + b"".join(msgs) + trailer


def persons(store: Store) -> list[dict[str, Any]]:
    return [orjson.loads(v["content"]) for v in store.all_versions() if v["kind"] == "person"]


def codes(store: Store) -> list[str]:
    return sorted(d["reason_code"] for d in store.dead_letters())


def test_message_cut_mid_pid_is_dead_lettered_never_a_citizen(
    tmp_path: Path, rabbit_bus: RabbitBus, store: Store
) -> None:
    a = hl7_adapter(tmp_path, rabbit_bus, store)
    second = synthetic_adt(2)
    cut = second[: second.index(b"PID|1||") + 11]  # the file ends inside the FNR: no BTS, no FTS
    f = a.settings.directory / "cut.hl7"
    f.write_bytes(batch(synthetic_adt(1), cut))
    a.handle(f)
    run_worker(rabbit_bus, store, 2)
    assert codes(store) == ["HL7_BATCH_TRUNCATED"]
    assert [p["given_name"] for p in persons(store)] == ["Test1"]  # only the intact message's patient
    assert (a.settings.archive / "cut.hl7.reason").read_text().startswith("message 1: HL7_BATCH_TRUNCATED")


def test_bts_five_with_two_messages(tmp_path: Path, rabbit_bus: RabbitBus, store: Store) -> None:
    a = hl7_adapter(tmp_path, rabbit_bus, store)
    f = a.settings.directory / "bts5.hl7"
    f.write_bytes(batch(synthetic_adt(1), synthetic_adt(2), trailer=b"BTS|5\rFTS|1\r"))
    a.handle(f)
    run_worker(rabbit_bus, store, 3)
    assert codes(store) == ["HL7_BATCH_COUNT_MISMATCH"]  # reported, with its reason, without content
    assert sorted(p["given_name"] for p in persons(store)) == ["Test1", "Test2"]  # the intact ones go through
    [dead] = store.dead_letters()
    assert dead["reason"] == "HL7_BATCH_COUNT_MISMATCH: BTS-1 of batch 1 says 5 messages, the file holds 2"


def test_message_over_the_limit_is_dead_lettered_without_its_bytes(
    tmp_path: Path, rabbit_bus: RabbitBus, store: Store
) -> None:
    a = hl7_adapter(tmp_path, rabbit_bus, store, max_message_bytes=4096)
    big = synthetic_adt(2).replace(b"\rPV1|", b"\rNTE|1||" + b"x" * 10_000 + b"\rPV1|")
    f = a.settings.directory / "big.hl7"
    f.write_bytes(synthetic_adt(1) + big + synthetic_adt(3))
    a.handle(f)
    run_worker(rabbit_bus, store, 3)
    [dead] = store.dead_letters()
    assert dead["reason_code"] == "HL7_MESSAGE_TOO_LARGE" and "max_message_bytes=4096" in dead["reason"]
    archived = store.archived(dead["envelope_id"])
    assert archived is not None and archived.raw == b""
    assert sorted(p["given_name"] for p in persons(store)) == ["Test1", "Test3"]


def test_cp1252_in_a_message_declaring_8859_1(tmp_path: Path, rabbit_bus: RabbitBus, store: Store) -> None:
    a = hl7_adapter(tmp_path, rabbit_bus, store)
    msg = synthetic_adt(1).decode().replace("|2.5\r", "|2.5||||||8859/1\r", 1)
    msg = msg.replace("Testesen^Test1", "Ødegård–Hansen^Åse")
    f = a.settings.directory / "cp.hl7"
    f.write_bytes(msg.encode("cp1252"))
    a.handle(f)
    run_worker(rabbit_bus, store, 1)
    [person] = persons(store)
    assert (person["family_name"], person["given_name"]) == ("Ødegård–Hansen", "Åse")  # no C1 control
    [version] = [v for v in store.all_versions() if v["kind"] == "person"]
    archived = store.archived(version["envelope_id"])
    assert archived is not None and archived.attributes["charset_repaired"] == "iso-8859-1->cp1252"


def test_kith_utf8_declared_latin1_is_stored_right_and_flagged(
    tmp_path: Path, rabbit_bus: RabbitBus, store: Store
) -> None:
    s = KithSettings(directory=tmp_path / "in", outbox=tmp_path / "out", stable_seconds=0, sender_her_id="1")
    adapter = build_kith("kith", s, Runtime(rabbit_bus, store))
    adapter.settings.ensure_dirs()  # run() creates them; check() creates nothing
    adapter.check()
    text = (FIXTURES / "kith" / "synthetic_svarrapport_v1.4.xml").read_text(encoding="utf-8")
    text = text.replace("Testesen, Kari", "Ødegård, Åse").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"', 1)
    f = s.directory / "svar.xml"
    f.write_bytes(text.encode("utf-8"))
    adapter.handle(f)
    worker = Worker(rabbit_bus, store, Mapper(), batch_size=100, batch_wait=0.05)
    consumer = rabbit_bus.consumer(100)
    try:
        for _ in range(40):
            if worker.step(consumer):
                break
    finally:
        consumer.close()
    [person] = persons(store)
    assert (person["family_name"], person["given_name"]) == ("Ødegård", "Åse")  # not "Ã\x98degÃ¥rd"
    [version] = [v for v in store.all_versions() if v["kind"] == "person"]
    archived = store.archived(version["envelope_id"])
    assert archived is not None and archived.attributes["charset_repaired"] == "iso-8859-1->utf-8"
    [receipt] = list(s.outbox.iterdir())
    status = etree.parse(str(receipt)).getroot().find("{*}Status")
    assert status is not None and status.get("V") == "1"
