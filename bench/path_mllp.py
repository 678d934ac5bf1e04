"""The MLLP path: ORU^R01 over TCP into the ``mllp`` adapter, end to end into PostgreSQL.

Phases (each from the first frame written until the store holds the phase's last envelope):

1. latency: ``mllp_rate`` msg/s offered on one connection (ACK latency p50/p99 from
   :func:`adapters.mllp.client.send_load`), engine as one process like ``enjournal run``;
2. throughput: ``mllp_messages`` over ``mllp_connections`` connections, unpaced, same engine;
3. latency again with ``workers.in_intake_process: false`` (``enjournal run`` starts ``worker_procs``
   worker processes of their own, the shape of ``deploy/``): the difference to 1. is what mapping in the
   listener's process (the GIL) costs;
4. throughput again in that shape;
5. latency in that shape with ``ack_after: commit``: each AA waits for the worker's journal commit (the
   workers' batch wait and commit are part of it, so the 15 ms target of the broker-confirm ACK does not
   apply).
"""

from __future__ import annotations

import asyncio
import socket
import time

from bench import data
from bench.paths import Options, PathResult, cleanup, engine_config, missing, per_message_us
from bench.proc import AMQP_URL, EngineProcess, PgSchema, rabbit_section, tag, wait_consumers, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("MLLP listener did not open")


def mllp_paths(opts: Options, pats: list[data.Patient]) -> list[PathResult]:
    """Latency at ``mllp_rate`` on one connection, then throughput over ``mllp_connections`` (one engine
    process, like ``enjournal run``); then the latency phase again with the workers in a process of their
    own, which shows how much the workers' CPU (the GIL) costs the listener's ACK latency."""
    n_lat, n_thr = int(opts.mllp_rate * opts.mllp_seconds), opts.mllp_messages
    lat = PathResult(f"mllp-oru-latency@{opts.mllp_rate:g}/s", n_lat)
    thr = PathResult(f"mllp-oru-{opts.mllp_connections}conn", n_thr)
    split = PathResult(f"mllp-oru-latency@{opts.mllp_rate:g}/s split", n_lat)
    thr_split = PathResult(f"mllp-oru-{opts.mllp_connections}conn split", n_thr)
    commit = PathResult(f"mllp-oru-ack-after-commit@{opts.mllp_rate:g}/s split", n_lat)
    if note := missing("adapters.mllp.client") or missing("adapters.mllp"):
        lat.note = thr.note = split.note = thr_split.note = commit.note = note
        return [lat, thr, split, thr_split, commit]
    msgs = [data.oru_r01(i, pats[i % len(pats)], run="M") for i in range(n_lat + n_thr)]
    raw = raw_confirm_latency(opts, msgs[0])
    _mllp_run(opts, [(lat, msgs[:n_lat], 1, opts.mllp_rate), (thr, msgs[n_lat:], opts.mllp_connections, None)])
    _mllp_run(
        opts,
        [(split, msgs[:n_lat], 1, opts.mllp_rate), (thr_split, msgs[n_lat:], opts.mllp_connections, None)],
        split=True,
    )
    _mllp_run(opts, [(commit, msgs[:n_lat], 1, opts.mllp_rate)], split=True, ack_after="commit")
    return [raw, lat, thr, split, thr_split, commit]


def raw_confirm_latency(opts: Options, body: bytes, seconds: float = 4.0) -> PathResult:
    """The broker's own latency floor for the ACK path: one persistent message at a time, paced at
    ``mllp_rate``, plain pika with a confirm per message (what no engine can beat on this machine)."""
    import pika

    from engine.config import RabbitBusConfig

    res = PathResult(f"floor: raw publish+confirm @{opts.mllp_rate:g}/s", int(opts.mllp_rate * seconds))
    queue = f"bench.{tag()}.rawlat"
    conn = pika.BlockingConnection(pika.URLParameters(RabbitBusConfig(url=AMQP_URL).url_with_secret()))
    try:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True)
        ch.confirm_delivery()
        props, lat, t0 = pika.BasicProperties(delivery_mode=2), [], time.perf_counter()
        for i in range(res.messages):
            time.sleep(max(0.0, t0 + i / opts.mllp_rate - time.perf_counter()))
            t = time.perf_counter()
            ch.basic_publish("", queue, body, props, mandatory=True)
            lat.append(time.perf_counter() - t)
        res.seconds = time.perf_counter() - t0
        lat.sort()
        res.p50_ms, res.p99_ms = lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3
        ch.queue_delete(queue)
    finally:
        conn.close()
    return res


Phase = tuple[PathResult, list[bytes], int, float | None]


def _mllp_run(opts: Options, phases: list[Phase], split: bool = False, ack_after: str = "broker") -> None:
    port, work, bus, schema = free_port(), opts.workdir / f"mllp-{tag()}", rabbit_section(tag()), PgSchema()
    adapter = {
        "type": "mllp",
        "mapping": "hl7v2",
        "host": "127.0.0.1",
        "port": port,
        "source_system": "bench",
        "ack_after": ack_after,
    }
    cfg = engine_config(opts, bus, schema.sa_url, {"mllp": adapter})
    if split:  # enjournal run with the workers in their own process (workers.in_intake_process: false)
        cfg["workers"] = {**cfg.get("workers", {}), "in_intake_process": False, "processes": max(opts.worker_procs, 1)}
    engines = [EngineProcess(work, cfg, "all")]
    try:
        for e in engines:
            e.wait_ready()
        _wait_port(port)
        wait_consumers(bus, opts.workers * (max(opts.worker_procs, 1) if split else 1))
        done = 0
        for res, part, conns, rate in phases:
            done += len(part)
            _mllp_phase(opts, res, part, port, conns, rate, schema, done)
        stats = [e.stop() for e in engines]
        rss = [s["max_rss_kb"] / 1024 for s in stats if s.get("max_rss_kb")]
        for res, *_ in phases:
            res.rss_mb = max(rss) if rss else None
        if split:
            shape = f"{max(opts.worker_procs, 1)} worker processes (workers.in_intake_process: false)"
            for res, *_ in phases:
                res.note = "; ".join(x for x in (res.note.strip(), shape) if x)
        else:
            phases[-1][0].stages_us = per_message_us(stats[-1], done)
    finally:
        for e in engines:
            e.stop()
        cleanup(schema, bus)


def _mllp_phase(
    opts: Options,
    res: PathResult,
    part: list[bytes],
    port: int,
    conns: int,
    rate: float | None,
    schema: PgSchema,
    done: int,
) -> None:
    from adapters.mllp.client import send_load

    t0 = time.perf_counter()
    load = asyncio.run(send_load("127.0.0.1", port, part, connections=conns, rate=rate))
    t1 = wait_for(schema.count, done, opts.timeout)
    res.p50_ms, res.p99_ms = load.percentile(50) * 1e3, load.percentile(99) * 1e3
    bad = sum(1 for a in load.acks if a.code not in ("AA", "CA"))
    res.note = f"{bad} non-AA ACKs; " if bad else ""
    if t1 is None:
        t1, got = time.perf_counter(), schema.count() - (done - len(part))
        res.messages = max(got, 0)
        res.note += f"partial {got}/{len(part)} in {opts.timeout:g} s; "
    res.seconds = t1 - t0
