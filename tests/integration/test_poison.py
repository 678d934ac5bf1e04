"""No input stops ingestion (issue 18, item 1), on the real RabbitMQ and on PostgreSQL and SQLite.

HL7 messages with a 0x00 byte in MSH-10 or PID-3 (and an HL7 hex escape that decodes to NUL) reach the
worker in a file and as directly published envelopes: each is a dead letter with its reason code, its
neighbours in the same batch and every later message are journaled, and the worker thread lives on.
Whatever else the store refuses is isolated and dead-lettered on its own (``STORE_REJECTED``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.hl7_file import Settings, build
from adapters.mllp.client import synthetic_adt
from engine.bus.rabbit import RabbitBus
from engine.envelope import Envelope
from engine.model import Coding, MappingResult, Observation
from engine.outcome import Outcome
from engine.store import Store
from engine.worker import Mapper, Worker
from tests.helpers import ack_code, envelope, fnr_id, observation, outcome, person
from tests.integration import poison_mapping
from tests.integration.pipeline_util import make_envelopes
from tests.unit.mllp.helpers import Runtime

pytestmark = pytest.mark.rabbitmq


def poison_messages(first: int) -> dict[str, bytes]:
    """The poison probes: NUL in MSH-10, in PID-3, and as an HL7 hex escape in the patient's name."""
    return {
        "msh10": synthetic_adt(first, control_id=f"NUL\x00{first}"),
        "pid3": synthetic_adt(first + 1).replace(b"^^^^FNR", b"\x00^^^^FNR"),
        "escape": synthetic_adt(first + 2).replace(b"Testesen^", b"Test\\X00\\esen^"),
    }


@contextlib.contextmanager
def running_worker(bus: Any, store: Store, mapper: Mapper | None = None) -> Iterator[threading.Thread]:
    """A worker's run loop in a thread of its own (as the runtime runs it), stopped on exit."""
    stop, errors = threading.Event(), []
    worker = Worker(bus, store, mapper or Mapper(), batch_size=500, batch_wait=0.05)

    def run() -> None:
        try:
            worker.run(stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    t = threading.Thread(target=run, name="worker-under-test", daemon=True)
    t.start()
    try:
        yield t
    finally:
        stop.set()
        t.join(30)
    assert not errors, [type(e).__name__ for e in errors]


def wait_for(cond: Callable[[], bool], timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def received(store: Store) -> int:
    return sum(store.counts()["received"].values())


def dead_by_raw(store: Store) -> dict[bytes, str]:
    out = {}
    for d in store.dead_letters():
        env = store.archived(d["envelope_id"])
        assert env is not None, "a dead letter without its raw bytes"
        assert "\x00" not in d["reason"] and "Testesen" not in d["reason"]
        out[env.raw] = d["reason_code"]
    return out


def test_nul_in_msh10_and_pid3_over_a_file(tmp_path: Path, rabbit_bus: RabbitBus, any_store: Store) -> None:
    s = Settings(type="hl7-file", directory=tmp_path / "in", stable_seconds=0, source_system="lab")
    adapter = build("lab-files", s, Runtime(rabbit_bus, any_store))
    adapter.settings.ensure_dirs()  # run() creates them; check() creates nothing
    adapter.check()
    poison = poison_messages(100)
    good = [synthetic_adt(i) for i in range(1, 5)]
    first = s.directory / "mixed.hl7"
    first.write_bytes(good[0] + poison["msh10"] + good[1] + poison["pid3"] + good[2] + poison["escape"] + good[3])
    adapter.handle(first)
    with running_worker(rabbit_bus, any_store) as worker:
        assert wait_for(lambda: received(any_store) == 7)
        later = s.directory / "later.hl7"
        later.write_bytes(b"".join(synthetic_adt(i) for i in range(10, 13)))
        adapter.handle(later)
        assert wait_for(lambda: received(any_store) == 10)
        assert worker.is_alive()
    assert dead_by_raw(any_store) == dict.fromkeys(poison.values(), "TEXT_NOT_STORABLE")
    for i in (1, 2, 3, 4, 10, 11, 12):  # the neighbours in the same batch and the later messages
        assert ack_code(any_store, f"HL7|LOADGEN|TEST|MSG{i:08d}") == "AA"
    assert any_store.counts()["records"] == {"person": 7, "encounter": 7}
    assert rabbit_bus.depth()["dead"] == 3 and rabbit_bus.depth()["work"] == 0


def test_nul_in_directly_published_envelopes(rabbit_bus: RabbitBus, any_store: Store) -> None:
    """Envelopes as an adapter without its own NUL check would publish them: the NUL also in the dedup key.
    A NUL in MSH-3, which reaches only the dedup key, is refused too: the mapping trusts no message with one."""

    def env(raw: bytes, dedup: str) -> Envelope:
        return Envelope.build(
            raw,
            adapter="direct",
            mapping="hl7v2",
            content_type="application/hl7-v2",
            charset="iso-8859-1",
            dedup_key=dedup,
        )

    poison = poison_messages(200)
    envs = [
        env(synthetic_adt(1), "HL7|LOADGEN|TEST|MSG00000001"),
        env(poison["msh10"], "HL7|LOADGEN|TEST|NUL\x00200"),
        env(poison["pid3"], "HL7|LOADGEN|TEST|MSG00000201"),
        env(synthetic_adt(3, app="LOAD\x00GEN"), "HL7|LOAD\x00GEN|TEST|MSG00000003"),
        env(poison["escape"], "HL7|LOADGEN|TEST|MSG00000202"),
        env(synthetic_adt(4), "HL7|LOADGEN|TEST|MSG00000004"),
    ]
    rabbit_bus.publish(envs)  # one frame: one batch
    with running_worker(rabbit_bus, any_store) as worker:
        assert wait_for(lambda: received(any_store) == 6)
        rabbit_bus.publish([env(synthetic_adt(5), "HL7|LOADGEN|TEST|MSG00000005")])
        assert wait_for(lambda: received(any_store) == 7)
        assert worker.is_alive()
    msh3 = envs[3].raw
    assert dead_by_raw(any_store) == dict.fromkeys([*poison.values(), msh3], "TEXT_NOT_STORABLE")
    assert any_store.counts()["records"] == {"person": 3, "encounter": 3}


def test_the_store_isolates_what_the_database_refuses(any_store: Store, store_url: str) -> None:
    """Outcomes that bypass the mapping step: the store finds what it cannot write, dead-letters exactly
    that, with its raw bytes, and commits the rest."""
    nul = Outcome(
        envelope("nul", raw=b"NUL\x00RAW"),
        result=MappingResult(
            records=(observation("lab|nul", fnr_id(1), 1.0).model_copy(update={"value_text": "a\x00b"}),)
        ),
    )
    naive = Observation.model_construct(
        key="lab|naive",
        subject=fnr_id(1),
        event_time=datetime(2026, 1, 1),
        provenance=person(fnr_id(1)).provenance,
        code=Coding(code="X"),
        kind="observation",
        flags=(),
    )
    typeerr = Outcome(envelope("naive", raw=b"NAIVE"), result=MappingResult(records=(naive,)))
    wide = Outcome(
        envelope("wide", raw=b"WIDE", adapter="a" * 300),
        result=MappingResult(records=(observation("lab|wide", fnr_id(2), 1.0),)),
    )
    long_key = observation("lab|" + "9" * 600, fnr_id(3), 1.0)  # as the mapping step leaves it: not suspect
    long = Outcome(envelope("long", raw=b"LONG"), result=MappingResult(records=(long_key,)))
    good = [outcome(f"g{i}", [observation(f"lab|g{i}", fnr_id(i), float(i))]) for i in range(40)]  # PG: COPY
    stats = any_store.commit_batch([*good[:10], nul, *good[10:20], typeerr, *good[20:30], wide, long, *good[30:]])
    codes = {o.envelope.id: o.reason for o in stats.rejected}
    assert codes["nul"] == "TEXT_NOT_STORABLE: record 0 (observation) value_text: NUL character"
    assert codes["long"] == "TEXT_NOT_STORABLE: record 0 (observation) key: longer than 500 characters"
    assert codes["naive"] == "STORE_REJECTED: TypeError"
    stored = {r["record_key"] for r in any_store.all_versions()}
    assert {f"lab|g{i}" for i in range(40)} <= stored and not {"lab|nul", "lab|naive"} & stored
    if store_url.startswith("postgresql"):  # varchar(200): PostgreSQL refuses what SQLite stores
        assert codes["wide"] == "STORE_REJECTED: StringDataRightTruncation writing raw_archive"
        dead = {d["envelope_id"]: d for d in any_store.dead_letters()}
        assert len(dead["wide"]["adapter"]) == 200  # the metadata made storable
    else:
        assert "wide" not in codes and "lab|wide" in stored
    for eid, raw in (("nul", b"NUL\x00RAW"), ("naive", b"NAIVE")):
        archived = any_store.archived(eid)
        assert archived is not None and archived.raw == raw  # replayable
    again = any_store.commit_batch([good[0], nul, typeerr])  # redelivery: the same result, nothing twice
    assert {o.envelope.id for o in again.rejected} == {"nul", "naive"} and again.dead_letters == 0


def test_a_worker_keeps_going_when_mapping_or_store_raise_unexpected_errors(rabbit_bus: RabbitBus, pg_url: str) -> None:
    store = Store(pg_url)
    try:

        def env(raw: bytes) -> Envelope:
            return Envelope.build(raw, adapter="t", mapping=poison_mapping.NAME, content_type="text/plain")

        good = [e.model_copy(update={"mapping": poison_mapping.NAME}) for e in make_envelopes(20)]
        surprise, naive = env(b"SURPRISE"), env(b"NAIVE|1")
        rabbit_bus.publish(good[:10] + [surprise, naive] + good[10:])
        with running_worker(rabbit_bus, store) as worker:
            assert wait_for(lambda: received(store) == 22)
            rabbit_bus.publish(make_envelopes(5, start=100))
            assert wait_for(lambda: received(store) == 27)
            assert worker.is_alive()
        dead = {d["envelope_id"]: (d["reason_code"], d["reason"]) for d in store.dead_letters()}
        assert dead == {
            surprise.id: ("MAPPING_CRASH", f"MAPPING_CRASH: Surprise in mapping {poison_mapping.NAME}"),
            naive.id: ("STORE_REJECTED", "STORE_REJECTED: TypeError"),
        }
        assert store.counts()["records"]["observation"] == 25
        assert rabbit_bus.depth()["dead"] == 2
    finally:
        store.close()
