"""Plumbing for end-to-end runs: a fresh PostgreSQL schema, unique queue names, the engine subprocess,
and polling the store until the last envelope is committed.

* :class:`PgSchema`: ``CREATE SCHEMA bench_<tag>``; the engine gets ``?options=-csearch_path%3D<schema>``;
  dropped afterwards (never ``public``).
* :class:`EngineProcess`: ``python -m bench.runner`` with a YAML config (same as ``enjournal run``),
  its log in the work directory; :meth:`stop` sends SIGTERM, waits and returns the worker stats and
  the peak RSS the child wrote.
* :func:`wait_for`: polls ``count(*)`` of ``raw_archive`` (one row per envelope, written in the same
  transaction as its records) until it reaches the expected number; returns the time it did.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import yaml

from bench.rss import vm_hwm_kb

REPO = Path(__file__).resolve().parent.parent
AMQP_URL = os.environ.get("ENJOURNAL_BENCH_AMQP_URL", "amqp://guest@127.0.0.1:5672/%2F")
PG_URL = os.environ.get("ENJOURNAL_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def tag() -> str:
    return uuid.uuid4().hex[:10]


def rabbit_section(t: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "rabbitmq",
        "url": AMQP_URL,
        "exchange": f"bench.{t}.inbound",
        "queue": f"bench.{t}.work",
        "dead_letter_exchange": f"bench.{t}.dlx",
        "dead_letter_queue": f"bench.{t}.dead",
        **extra,
    }


def delete_topology(section: dict[str, Any]) -> None:
    from engine.bus.rabbit import RabbitBus
    from engine.config import RabbitBusConfig

    RabbitBus(RabbitBusConfig(**section)).delete_topology()


def wait_consumers(section: dict[str, Any], expected: int, timeout: float = 60.0) -> None:
    """Wait until ``expected`` consumers are on the bus section's work queue. An engine whose workers are
    spawned processes is ready before they are: each imports and connects for a second or more, taking
    both cores meanwhile, and a latency phase started then measures that start-up (the first two of eight
    seconds at 300 msg/s had a p99 of 43 ms, the rest 10-26)."""
    import pika

    from engine.config import RabbitBusConfig

    end = time.monotonic() + timeout
    conn = pika.BlockingConnection(pika.URLParameters(RabbitBusConfig(**section).url_with_secret()))
    try:
        while True:
            ch = conn.channel()
            try:
                found = ch.queue_declare(section["queue"], passive=True).method.consumer_count
                ch.close()
            except pika.exceptions.ChannelClosedByBroker:  # not declared yet
                found = 0
            if found >= expected:
                return
            if time.monotonic() > end:
                raise RuntimeError(f"{found} of {expected} consumers on the work queue after {timeout:g} s")
            time.sleep(0.05)
    finally:
        conn.close()


class PgSchema:
    """A throw-away schema; ``sa_url`` for the engine, ``count()`` for the poller."""

    def __init__(self) -> None:
        self.name = f"bench_{tag()}"
        with psycopg.connect(PG_URL, autocommit=True) as c:
            c.execute(f"CREATE SCHEMA {self.name}")
        self.sa_url = (
            PG_URL.replace("postgresql://", "postgresql+psycopg://", 1) + f"?options=-csearch_path%3D{self.name}"
        )
        self._conn: psycopg.Connection | None = None

    def count(self, table: str = "raw_archive") -> int:
        if self._conn is None:
            self._conn = psycopg.connect(PG_URL, autocommit=True, options=f"-csearch_path={self.name}")
        try:
            return int(self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
        except psycopg.errors.UndefinedTable:
            return 0

    def drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        with psycopg.connect(PG_URL, autocommit=True) as c:
            c.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")


def sqlite_count(path: Path, table: str = "raw_archive") -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as c:
        try:
            return int(c.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def wait_for(
    count: Callable[[], int], expected: int, timeout: float, interval: float = 0.05, longest: float = 0.5
) -> float | None:
    """perf_counter() when ``count() >= expected``; None on timeout.

    The count is a query on the machine being measured, so it is asked for rarely while the end is far
    (half the time the rate so far says is left, at most ``longest``) and every ``interval`` near it:
    a ``count(*)`` of a growing table 20 times a second took CPU from the engine it was timing."""
    start = time.perf_counter()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        n = count()
        now = time.perf_counter()
        if n >= expected:
            return now
        rate = n / max(now - start, 1e-9)
        left = (expected - n) / rate if rate > 0 else longest
        time.sleep(min(longest, max(interval, left / 2)))
    return None


class EngineProcess:
    """One engine (adapters + workers) in a subprocess, like ``enjournal run -c``."""

    def __init__(self, workdir: Path, config: dict[str, Any], mode: str = "all") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path, self.stats_path = workdir / f"enjournal-{mode}.yaml", workdir / f"stats-{mode}.json"
        self.config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        self.log = workdir / f"engine-{mode}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.runner", str(self.config_path), str(self.stats_path), mode],
                cwd=str(REPO),
                env=env,
                stdout=out,
                stderr=out,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        ready = Path(str(self.stats_path) + ".ready")
        while time.monotonic() < end:
            if ready.exists():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited with {self.proc.returncode}; see {self.log.name}")
            time.sleep(0.05)
        raise RuntimeError("engine did not start in time")

    def stop(self, timeout: float = 60.0) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # the peak comes from the engine itself (VmHWM): the rusage os.wait4 reports would carry this
        # benchmark process's own peak, which Linux hands to a child across fork + exec
        return json.loads(self.stats_path.read_text()) if self.stats_path.exists() else {}

    def vm_hwm_kb(self) -> int:
        """Peak RSS so far (while the process runs)."""
        return vm_hwm_kb(self.proc.pid)
