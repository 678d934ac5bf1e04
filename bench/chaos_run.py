"""Shared steps of every fault: options, feeding the engine, snapshots, the final drain and the verdict."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.chaos_checker import Result, Snapshot, arrived_ids, broker_dead_letters, pii_sources, reconcile, scan_pii
from bench.chaos_data import MessageSet, Sent, file_body
from bench.chaos_env import AMQP_URL, World
from engine.envelope import Envelope


@dataclass
class Options:
    """Sizes and durations; :func:`full` for ``make chaos``, :func:`fast` for the test subset."""

    messages: int = 4000
    worker_kills: int = 20
    adapter_kills: int = 6
    db_outage: float = 30.0
    db_mode: str = "drop"  # drop / stall
    broker_outage: float = 10.0
    sigterm_deadline: float = 30.0
    stable_seconds: float = 1.0
    seed: int = 11
    keep: bool = False


def fast() -> Options:
    return Options(messages=300, worker_kills=3, adapter_kills=1, db_outage=3.0, broker_outage=0.0, stable_seconds=0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mllp_adapter(port: int) -> dict[str, Any]:
    return {
        "type": "mllp",
        "host": "127.0.0.1",
        "port": port,
        "source_system": "chaos",
        "bus_retry_seconds": 5.0,
        "drain_timeout": 10.0,
    }


def file_adapter(directory: Path, stable: float) -> dict[str, Any]:
    return {
        "type": "hl7-file",
        "directory": str(directory),
        "pattern": "*.hl7",
        "poll_interval": 0.2,
        "stable_seconds": stable,
        "source_system": "chaos",
    }


def adapter_available(module: str) -> str | None:
    """None when the adapter module imports, else why it is missing."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        return f"skipped (adapter missing: {exc.name})"
    return None


def publish(world: World, messages: list[Sent], chunk: int = 500) -> None:
    """Put envelopes straight on the bus (as an adapter would, after its triage)."""
    assert world.bus is not None
    envs = [
        Envelope.build(
            m.raw,
            adapter="chaos-bus",
            mapping="hl7v2",
            content_type="application/hl7-v2",
            charset="iso-8859-1",
            source_system="chaos",
        )
        for m in messages
    ]
    for i in range(0, len(envs), chunk):
        world.bus.publish(envs[i : i + chunk])


def drop_files(inbox: Path, messages: list[Sent], per_file: int, prefix: str = "f") -> dict[str, Path]:
    """Write files atomically (temp name, then rename); control id -> file it went into."""
    inbox.mkdir(parents=True, exist_ok=True)
    where: dict[str, Path] = {}
    for i in range(0, len(messages), per_file):
        part = messages[i : i + per_file]
        target = inbox / f"{prefix}{i // per_file:05d}.hl7"
        tmp = target.with_suffix(".hl7.tmp")
        tmp.write_bytes(file_body(part))
        tmp.rename(target)
        where.update({m.control_id: target for m in part})
    return where


def drop_files_over(inbox: Path, messages: list[Sent], per_file: int, seconds: float) -> threading.Thread:
    """Drop the files one by one over ``seconds`` (in a thread), so intake spans a fault."""
    parts = [messages[i : i + per_file] for i in range(0, len(messages), per_file)]

    def feed() -> None:
        for n, part in enumerate(parts):
            drop_files(inbox, part, per_file, prefix=f"g{n:05d}-")
            time.sleep(seconds / max(1, len(parts)))

    t = threading.Thread(target=feed, name="chaos-file-feeder", daemon=True)
    t.start()
    return t


def pace_for(count: int, window: int, seconds: float) -> float:
    """Pause between MLLP windows so that ``count`` messages take about ``seconds``."""
    return max(0.0, seconds / max(1, count // window))


def snapshot(world: World, sent: set[str]) -> Snapshot:
    assert world.store is not None
    return Snapshot(sent=sent, arrived=arrived_ids(world.store.engine))


def wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.25) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def all_arrived(world: World, msgs: MessageSet) -> Callable[[], bool]:
    want = {m.control_id for m in msgs.messages}

    def check() -> bool:
        assert world.store is not None
        return want <= arrived_ids(world.store.engine)

    return check


def inbox_empty(inbox: Path) -> Callable[[], bool]:
    return lambda: not any(p for p in inbox.glob("*.hl7"))


def finish(
    world: World,
    res: Result,
    msgs: MessageSet,
    *,
    snapshots: list[Snapshot] | None = None,
    truncated: dict[str, Path] | None = None,
    dirs: tuple[Path, ...] = (),
    drain: bool = True,
) -> Result:
    """Stop the world's engines, drain the queue with a fresh worker, reconcile, scan for PII."""
    for p in world.procs:
        if p.alive():
            code = p.term(30.0)
            if code not in (0, None):
                res.notes.append(f"{p.name} exited {code} on SIGTERM")
            if code is None:
                p.kill9()
                res.errors.append(f"{p.name} did not stop within 30 s of SIGTERM")
    assert world.bus is not None
    if drain and world.bus.depth()["work"] > 0:
        code = world.drain(world.config("drain.yaml"))
        if code != 0:
            res.errors.append(f"final drain exited {code}")
    if world.bus.depth()["work"]:
        res.errors.append(f"{world.bus.depth()['work']} envelope(s) still on the work queue after the drain")
    assert world.store is not None
    dlq = broker_dead_letters(AMQP_URL.replace("guest@", "guest:guest@"), world.names["dead_letter_queue"])
    reconcile(res, msgs, world.store.engine, dlq, truncated=truncated, snapshots=snapshots or [])
    scan_pii(res, msgs, pii_sources(world.logs(), world.store.engine, dlq, dirs))
    return res
