"""``python -m bench`` (``make bench``, flags via ``BENCH_ARGS``): floor, paths, stages, one table.

Order: generate data (seeded) -> floor (raw pika + raw psycopg on the same services) -> stage
microbenchmarks -> each end-to-end path in its own engine subprocess -> floor again (the machine's load
changes; ratios use the mean of both floors) -> one rich table (+ ``--json``).
Needs RabbitMQ (guest/guest) and PostgreSQL (postgres@test) on 127.0.0.1 (override with
``ENJOURNAL_BENCH_AMQP_URL`` / ``ENJOURNAL_BENCH_PG_URL``). Default sizes run in under 3 minutes on 2 cores;
e.g. ``make bench BENCH_ARGS="--messages 20000 --csv-rows 1000000"`` for a long run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import attach, big_hl7, data, floor, model, path_mllp, paths, read, report, stages
from bench.proc import AMQP_URL, PG_URL
from engine import logging as elog

PATHS = ("adt", "oru", "mllp", "kith", "csv", "embedded", "attach", "read")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    a = p.add_argument
    a("--messages", type=int, default=10000, help="HL7 ADT messages (RabbitMQ path and embedded path)")
    a("--oru-messages", type=int, default=20000, help="ORU^R01 messages (a few seconds: steadier than a 1 s run)")
    a("--kith-messages", type=int, default=8000, help="Svarrapport files (a few seconds: steadier than a 1 s run)")
    a("--csv-rows", type=int, default=100_000, help="rows of the 20-column CSV (target is for 1M)")
    a("--csv-full", action="store_true", help="CSV with 1,000,000 rows (the target size)")
    a("--mllp-rate", type=float, default=300.0, help="offered rate of the latency phase (one connection)")
    a("--mllp-seconds", type=float, default=8.0, help="length of the latency phase")
    a("--mllp-messages", type=int, default=5000, help="messages of the throughput phase")
    a("--mllp-connections", type=int, default=8)
    a("--patients", type=int, default=2000, help="distinct synthetic patients the messages cycle through")
    a("--floor-messages", type=int, default=10000)
    a("--stage-messages", type=int, default=1000)
    a("--path-timeout", type=float, default=20.0, help="budget per path; a slower path reports what it committed")
    a("--workers", type=int, default=1, help="worker threads of each engine process")
    a(
        "--worker-procs",
        type=int,
        default=2,
        help="N: an intake process + N worker processes, the production shape of deploy/enjournal.example.yaml "
        "(workers.processes: 2, in_intake_process: false); 0: workers inside one engine process",
    )
    a("--batch-size", type=int, default=500)
    a("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    a("--only", default=",".join(PATHS), help=f"comma-separated paths of {','.join(PATHS)}")
    a("--no-stages", action="store_true", help="skip the microbenchmarks")
    a(
        "--hl7-big-mb",
        type=int,
        default=0,
        help="also measure the HL7 file adapter's peak RSS on one file of this many MB (adapter alone; 0: off)",
    )
    a("--hl7-big-repo", type=Path, help="with --hl7-big-mb: measure the adapter of this checkout (e.g. main's)")
    a("--read-versions", type=int, default=5_000_000, help="record versions the read section seeds (COPY)")
    a("--read-citizens", type=int, default=50_000, help="citizens they are spread over")
    a("--read-seconds", type=float, default=5.0, help="per read request and concurrency")
    a("--seed", type=int, default=42)
    a("--json", type=Path, help="write the rows as JSON here")
    a("--workdir", type=Path, default=Path("var/bench"))
    a("--keep", action="store_true", help="keep the work directory (configs, engine logs)")
    return p.parse_args(argv)


def _reachable(url_host: str, port: int) -> bool:
    try:
        socket.create_connection((url_host, port), timeout=2).close()
        return True
    except OSError:
        return False


def _services_up(wait: float = 0.0) -> bool:
    """Both services reachable, waiting up to ``wait`` seconds (another suite may be restarting them)."""
    end = time.monotonic() + wait
    while not (_reachable("127.0.0.1", 5672) and _reachable("127.0.0.1", 5432)):
        if time.monotonic() >= end:
            return False
        time.sleep(1.0)
    return True


def _options(ns: argparse.Namespace) -> paths.Options:
    return paths.Options(
        messages=ns.messages,
        oru_messages=ns.oru_messages,
        kith_messages=ns.kith_messages,
        csv_rows=1_000_000 if ns.csv_full else ns.csv_rows,
        mllp_rate=ns.mllp_rate,
        mllp_seconds=ns.mllp_seconds,
        mllp_messages=ns.mllp_messages,
        mllp_connections=ns.mllp_connections,
        workers=ns.workers,
        worker_procs=ns.worker_procs,
        batch_size=ns.batch_size,
        log_level=ns.log_level,
        seed=ns.seed,
        timeout=ns.path_timeout,
        workdir=ns.workdir.resolve(),
    )


def _oru_content_bytes(pats: list[data.Patient]) -> int:
    from mappings.hl7v2 import map_message

    res = map_message(data.oru_r01(0, pats[0]), stages._ctx("8859/1"))
    return len(res.records[0].content_json())  # the width the store writes


def _step(label: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    print(f"[bench] {label} ...", file=sys.stderr, flush=True)
    out = fn()
    print(f"[bench] {label}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return out


def read_rows(result: read.ReadResult) -> list[report.Row]:
    """The read section as report rows: the API and its floor per request and concurrency, and the goal."""
    rows: list[report.Row] = []
    for a, f in zip(result.api, result.floor, strict=True):
        ok = read.goal_met(a, f)
        label = f"{a.name}, {a.clients} clients ({result.versions:,} versions)"
        rows.append(
            report.Row(
                "read",
                label,
                a.requests,
                a.seconds,
                a.rate,
                None,
                a.p50_ms,
                a.p99_ms,
                target="p99 <= 2 x floor + 5 ms",
                status="PASS" if ok else "MISS",
                note=f"floor {f.rate:,.0f} req/s, p50 {f.p50_ms:.1f} ms, p99 {f.p99_ms:.1f} ms",
            )
        )
    return rows


def _run_paths(only: set[str], opts: paths.Options, pats: list[data.Patient]) -> list[paths.PathResult]:
    plan: list[tuple[str, Callable[[], Any]]] = [
        ("adt", lambda: [paths.hl7_path("adt", opts, pats)]),
        ("oru", lambda: [paths.hl7_path("oru", opts, pats)]),
        ("mllp", lambda: path_mllp.mllp_paths(opts, pats)),
        ("kith", lambda: [paths.kith_path(opts, pats)]),
        ("csv", lambda: [paths.csv_path(opts, pats)]),
        ("embedded", lambda: [paths.hl7_path("adt", opts, pats, embedded=True)]),
    ]
    out: list[paths.PathResult] = []
    for key, fn in plan:
        if key in only:
            _services_up(60.0)
            try:
                out += _step(f"path {key}", fn)
            except Exception as exc:  # noqa: BLE001 - one broken path must not hide the others
                out.append(paths.PathResult(key, 0, note=f"failed: {type(exc).__name__}: {exc}"[:200]))
    return out


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    if not _services_up(10.0):
        print("bench: RabbitMQ (5672) and PostgreSQL (5432) must run on 127.0.0.1", file=sys.stderr)
        return 2
    elog.configure("warning")  # the engine's info lines of in-process stages would drown the table
    opts, only = _options(ns), {p.strip() for p in ns.only.split(",") if p.strip()}
    opts.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pats = _step("data", lambda: data.patients(ns.patients, ns.seed))
    body = data.oru_r01(0, pats[0])

    def measure() -> floor.FloorResult:
        return floor.measure(
            AMQP_URL.replace("guest@", "guest:guest@"), PG_URL, body, ns.floor_messages, _oru_content_bytes(pats)
        )

    floors = [_step("floor", measure)]
    if not ns.no_stages:
        st = _step(
            "stages",
            lambda: (
                stages.cpu_stages(ns.stage_messages, pats, ns.seed)
                + stages.bus_stages(ns.stage_messages, pats, opts.workdir)
                + stages.store_stages(min(ns.stage_messages, 500), pats)
            ),
        )
    results = _run_paths(only, opts, pats)
    if ns.hl7_big_mb > 0:
        _services_up(60.0)
        results.append(
            _step("hl7 big file", lambda: big_hl7.measure(ns.hl7_big_mb, opts.workdir, pats, ns.hl7_big_repo))
        )
    try:
        _services_up(60.0)
        floors.append(_step("floor again", measure))
    except Exception as exc:  # noqa: BLE001 - keep the figures of the run; the start floor stands
        print(f"[bench] floor again failed ({type(exc).__name__}); using the start floor", file=sys.stderr)
    rows, fl = report.floor_rows(floors)
    rows += [report.path_row(r, fl) for r in results]
    if "attach" in only:
        _services_up(60.0)
        rows += attach.rows(_step("attachments", attach.measure))
    if "read" in only:
        _services_up(60.0)
        measured = _step(
            "read side",
            lambda: read.measure(opts.workdir, ns.read_versions, ns.read_citizens, ns.read_seconds),
        )
        rows += read_rows(measured)
    rows += model.oru_rows(results, [] if ns.no_stages else st, fl, os.cpu_count() or 1)
    if not ns.no_stages:
        rows += report.stage_rows(st)
    total = time.perf_counter() - started
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": platform.python_version(),
        "seconds": round(total, 1),
        "args": {k: str(v) for k, v in vars(ns).items()},
    }
    report.render(
        rows,
        f"enjournal bench - floor {fl:,.0f} msg/s, ORU {len(body)} B, "
        f"{ns.patients} patients, {ns.workers} worker threads"
        f"{f' x {ns.worker_procs} processes' if ns.worker_procs else ''} - {total:.0f} s",
    )
    if ns.json:
        report.write_json(ns.json, rows, meta)
    if not ns.keep:
        shutil.rmtree(opts.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
