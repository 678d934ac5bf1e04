"""End-to-end paths: bytes offered to an adapter -> RabbitMQ (or the embedded bus) -> worker -> store.

Each path runs the engine in a subprocess of its own (:mod:`bench.runner`, what ``enjournal run``
does: adapters and workers as threads), with unique queue names and a fresh PostgreSQL schema. The
clock starts just before the first byte is offered (files renamed into the watched directory, or the
first MLLP frame written) and stops when the store holds the last envelope (``raw_archive`` polled,
every 50 ms near the end). The file paths also report the CPU time per message of the engine, the
broker and the database over that interval (:mod:`bench.cpu`). Paths: HL7 file ADT and ORU, KITH
Svarrapport files, CSV export, and the embedded default (HL7 file ADT on the embedded bus + SQLite);
MLLP is in :mod:`bench.path_mllp`. A path whose adapter is not importable reports
``n/a (adapter missing)``; a path still running after ``timeout`` reports what it committed by then.
With ``worker_procs`` > 0 the RabbitMQ file paths run an intake process (adapters only) plus that many
worker processes instead (how far the engine scales past one interpreter's GIL).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cpu, data, disk
from bench.proc import EngineProcess, PgSchema, delete_topology, rabbit_section, sqlite_count, tag, wait_for


@dataclass
class PathResult:
    name: str
    messages: int
    seconds: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    rss_mb: float | None = None
    stages_us: dict[str, float] = field(default_factory=dict)
    #: CPU µs per message by process group (``engine``, ``broker``, ``database``, ``intake``: see bench.cpu)
    cpu_us: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def rate(self) -> float | None:
        return self.messages / self.seconds if self.seconds else None


@dataclass
class Options:
    messages: int = 10000  # HL7 ADT messages (RabbitMQ and embedded)
    oru_messages: int = 20000
    kith_messages: int = 8000
    csv_rows: int = 100_000
    mllp_rate: float = 300.0
    mllp_seconds: float = 8.0
    mllp_messages: int = 5000  # throughput phase
    mllp_connections: int = 8
    per_file: int = 500  # HL7 messages per file
    workers: int = 1  # worker threads per engine process
    worker_procs: int = 2  # N: an intake process + N worker processes (deploy/'s shape); 0: one engine process
    batch_size: int = 500
    log_level: str = "info"
    seed: int = 42
    timeout: float = 25.0  # per path (per MLLP phase): past it the path reports what it committed
    workdir: Path = Path("var/bench")


def missing(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except ImportError:
        return "n/a (adapter missing)"
    return None


def engine_config(opts: Options, bus: dict[str, Any], store_url: str, adapters: dict[str, Any]) -> dict[str, Any]:
    return {
        "bus": bus,
        "store": {"url": store_url, "pool_size": max(4, opts.workers + 2)},
        "workers": {"count": opts.workers, "batch_size": opts.batch_size, "batch_wait_ms": 20, "prefetch": 1000},
        "log": {"level": opts.log_level, "format": "json"},
        "adapters": adapters,
    }


def per_message_us(stats: dict[str, Any], messages: int) -> dict[str, float]:
    return {k: v / max(messages, 1) * 1e6 for k, v in (stats.get("stage_seconds") or {}).items()}


def _finish(res: PathResult, engines: list[EngineProcess], t0: float, t1: float | None, note: str = "") -> PathResult:
    stats = [e.stop() for e in engines]
    res.seconds = (t1 - t0) if t1 else None
    rss = [st["max_rss_kb"] / 1024 for st in stats if st.get("max_rss_kb")]
    res.rss_mb = max(rss) if rss else None
    merged: dict[str, float] = {}
    for st in stats:
        for k, v in (st.get("stage_seconds") or {}).items():
            merged[k] = merged.get(k, 0.0) + v
    res.stages_us = per_message_us({"stage_seconds": merged}, res.messages)
    res.note = note
    dead = sum(int(st.get("dead") or 0) for st in stats)
    if dead:
        res.note += f" {dead} dead-lettered"
    if len(engines) > 1:
        res.note += f" {len(engines) - 1} worker processes; RSS " + "/".join(f"{r:.0f}" for r in rss) + " MB"
    return res


def _engines(work: Path, cfg: dict[str, Any], opts: Options, split: bool) -> list[EngineProcess]:
    """One process like ``enjournal run``; or, with ``worker_procs``, an intake process + N worker processes."""
    if not split or opts.worker_procs <= 0:
        return [EngineProcess(work, cfg)]
    return [EngineProcess(work, cfg, "adapters")] + [
        EngineProcess(work / f"w{i}", cfg, "workers") for i in range(opts.worker_procs)
    ]


def _stage_files(stage: Path, files: list[tuple[str, bytes]]) -> None:
    stage.mkdir(parents=True, exist_ok=True)
    for name, raw in files:
        (stage / name).write_bytes(raw)


def _offer(stage: Path, inbox: Path, names: list[str]) -> float:
    inbox.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for n in names:
        os.replace(stage / n, inbox / n)
    return t0


def file_path(
    name: str,
    opts: Options,
    adapter: dict[str, Any],
    files: list[tuple[str, bytes]],
    envelopes: int,
    messages: int,
    embedded: bool = False,
) -> PathResult:
    """Drop ``files`` into a watched directory; wait until ``envelopes`` are in the store."""
    work = opts.workdir / f"{name}-{tag()}"
    _stage_files(work / "stage", files)
    adapter = {**adapter, "directory": str(work / "in"), "poll_interval": 0.05, "stable_seconds": 0}
    if embedded:
        bus, db = {"kind": "embedded", "path": str(work / "queue.db")}, work / "journal.db"
        schema, store_url, count = None, f"sqlite:///{db}", (lambda: sqlite_count(db))
    else:
        bus, schema = rabbit_section(tag()), PgSchema()
        store_url, count = schema.sa_url, schema.count
    cfg = engine_config(opts, bus, store_url, {name: adapter})
    if embedded and opts.worker_procs > 0:  # one engine that starts its own worker processes (workers.processes)
        cfg["workers"]["processes"] = opts.worker_procs
    engines = _engines(work, cfg, opts, not embedded)
    try:
        for e in engines:
            e.wait_ready()
        cpu0 = cpu.snapshot()
        t0 = _offer(work / "stage", work / "in", [n for n, _ in files])
        t1 = wait_for(count, envelopes, opts.timeout)
        used = cpu.spent(
            cpu0, cpu.snapshot(), [e.proc.pid for e in engines], engines[0].proc.pid if len(engines) > 1 else None
        )
        res = PathResult(name, messages)
        if t1 is None:
            t1, done = time.perf_counter(), count()
            res.messages = messages * done // max(envelopes, 1)
            res.note = f"partial {done}/{envelopes} envelopes in {opts.timeout:g} s"
        res = _finish(res, engines, t0, t1, res.note)
        res.note = "; ".join(x for x in (res.note.strip(), cpu.per_message_note(used, res.messages)) if x)
        res.cpu_us = {k: v / max(res.messages, 1) * 1e6 for k, v in used.items()}
        return res
    finally:
        for e in engines:
            e.stop()
        cleanup(schema, None if embedded else bus)


def cleanup(schema: PgSchema | None, bus: dict[str, Any] | None) -> None:
    if schema is not None:
        schema.drop()
    if bus is not None:
        with contextlib.suppress(Exception):  # best effort: a broker hiccup must not hide the figures
            delete_topology(bus)


def hl7_files(kind: str, n: int, opts: Options, pats: list[data.Patient]) -> list[tuple[str, bytes]]:
    make: Callable[..., bytes] = data.adt_a08 if kind == "adt" else data.oru_r01
    msgs = [make(i, pats[i % len(pats)]) for i in range(n)]
    return [
        (f"{kind}_{k:05d}.hl7", data.hl7_file(msgs[i : i + opts.per_file]))
        for k, i in enumerate(range(0, n, opts.per_file))
    ]


def hl7_path(kind: str, opts: Options, pats: list[data.Patient], embedded: bool = False) -> PathResult:
    n = opts.messages if kind == "adt" else opts.oru_messages
    label = ("embedded-" if embedded else "") + f"hl7-file-{kind}"
    if note := missing("adapters.hl7_file"):
        return PathResult(label, n, note=note)
    adapter = {"type": "hl7-file", "mapping": "hl7v2", "pattern": "*.hl7", "source_system": "bench"}
    return file_path(label, opts, adapter, hl7_files(kind, n, opts, pats), n, n, embedded)


def kith_path(opts: Options, pats: list[data.Patient]) -> PathResult:
    n = opts.kith_messages
    template = data.kith_template()
    if note := missing("adapters.kith_file") or (None if template else "n/a (no Svarrapport template)"):
        return PathResult("kith-file-svarrapport", n, note=note)
    files = [
        (f"svar_{i:06d}.xml", data.svarrapport(i, pats[i % len(pats)], template or "", opts.seed)) for i in range(n)
    ]
    outbox = opts.workdir / f"kith-outbox-{tag()}"
    adapter = {
        "type": "kith-file",
        "mapping": "kith",
        "pattern": "*.xml",
        "outbox": str(outbox),
        "sender_her_id": "8800010",
    }
    fs = disk.probe(opts.workdir / f"disk-probe-{tag()}")  # one AppRec file is created per message
    res = file_path("kith-file-svarrapport", opts, adapter, files, n, n)
    res.note = "; ".join(x for x in (res.note, fs.note()) if x)
    return res


def csv_path(opts: Options, pats: list[data.Patient]) -> PathResult:
    n = opts.csv_rows
    if note := missing("adapters.csv"):
        return PathResult("csv", n, note=note)
    stage = opts.workdir / f"csv-src-{tag()}"
    stage.mkdir(parents=True, exist_ok=True)
    data.write_csv(stage / "bench_vedtak.csv", n, pats, opts.seed)
    raw = (stage / "bench_vedtak.csv").read_bytes()
    adapter = {
        "type": "csv",
        "mapping": "csv",
        "pattern": "*.csv",
        "encoding": "utf-8",
        "delimiter": ";",
        "source_system": "bench",
        "batch_rows": 500,
        "spec": data.csv_spec(),
    }
    chunks = math.ceil(n / 500)
    res = file_path("csv", opts, adapter, [("bench_vedtak.csv", raw)], chunks, n)
    (stage / "bench_vedtak.csv").unlink()
    stage.rmdir()
    return res
