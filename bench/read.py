"""The read side (issue #21): ``enjournal serve`` on a PostgreSQL journal of region size, against its floor.

A throw-away schema is seeded by COPY with ``versions`` record versions over ``citizens`` synthetic citizens
(one of them with exactly 200 records, the rest sharing the remainder), each citizen an FNR in the identity
tables. Record content is what the ORU^R01 mapping writes (Person and Observations of the bench's message,
with keys, subjects and values varied), so the API renders real records.

Two requests are timed at 1, 8 and 32 concurrent clients (threads with keep-alive connections), with a
clinician's token, through ``enjournal serve --workers N`` (the audit write included):

* ``$everything`` of the citizen with 200 records;
* ``Observation?patient=&code=`` for that citizen and one analysis code.

The floor is the same rows fetched by one SQL query with psycopg and serialised with orjson, at the same
concurrency, in the same run. Goal: p99 <= 2 x floor p99 + 5 ms.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench import data
from bench.proc import PG_URL, PgSchema
from engine import ids
from engine.model import MapContext

CONCURRENCY = (1, 8, 32)
SPECIAL_RECORDS = 200


@dataclass
class Timing:
    name: str
    clients: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class ReadResult:
    versions: int
    citizens: int
    seed_s: float
    api: list[Timing]
    floor: list[Timing]
    schema: str = ""  # the throw-away schema it seeded (dropped when done)


def _fnrs(n: int) -> list[str]:
    out: list[str] = []
    for year in range(1930, 2020):
        for month in range(1, 13):
            for day in range(1, 29):
                for ind in range(0, 500, 37):
                    v = ids.synthetic_fnr(day, month, year, ind)
                    if v is not None:
                        out.append(v)
                        if len(out) == n:
                            return out
    raise ValueError(n)


def _templates() -> list[tuple[str, str]]:
    """(kind, content JSON with ``@KEY@``, ``@SUBJ@`` and ``@VAL@`` placeholders) of the bench ORU's records."""
    from mappings.hl7v2 import map_message

    pats = data.patients(1)
    ctx = MapContext(envelope_id="seed", adapter="lab", received_at=datetime.now(UTC), charset="8859/1")
    out = []
    for rec in map_message(data.oru_r01(0, pats[0]), ctx).records:
        if rec.kind not in ("observation", "person"):
            continue
        text = rec.content_json().decode().replace(rec.key, "@KEY@").replace(rec.subject.value, "@SUBJ@")
        if rec.kind == "observation" and getattr(rec, "value_num", None) is not None:
            text = text.replace(f'"value_num":{rec.value_num}', '"value_num":@VAL@', 1)
        out.append((rec.kind, text))
    return out


def _rows(versions: int, fnrs: list[str]) -> Iterator[bytes]:
    """COPY text lines of record_versions: the first citizen gets 200 records, the others the rest."""
    tpl = [t for t in _templates() if t[0] == "observation"]
    person = next(t for t in _templates() if t[0] == "person")
    per = max(1, (versions - SPECIAL_RECORDS) // max(1, len(fnrs) - 1))
    n = 0
    for c, fnr in enumerate(fnrs):
        subject = f"{ids.OID_FNR}|{fnr}"
        count = SPECIAL_RECORDS if c == 0 else per
        for r in range(count):
            kind, text = person if r == 0 else tpl[r % len(tpl)]
            key = f"bench|{c}|{kind}|{r}"
            content = text.replace("@KEY@", key).replace("@SUBJ@", fnr).replace("@VAL@", str(r % 97 + 0.5))
            content = content.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            us = 1_700_000_000_000_000 + n * 1000
            yield f"{key}\t{n:032x}\t{kind}\t{subject}\t{us}\tfinal\t{content}\tseed{c}\tlab\tm{n}\n".encode()
            n += 1
            if n >= versions:
                return


def seed(schema: PgSchema, versions: int, citizens: int) -> float:
    """Create the store's tables in ``schema`` and COPY the journal in; seconds taken."""
    from engine.store import Store

    t0 = time.perf_counter()
    Store(schema.sa_url).close()  # tables and indexes of the current schema version
    fnrs = _fnrs(citizens)
    cols = (
        "record_key, version_hash, kind, subject_key, event_us, status, content, envelope_id, adapter, "
        "source_message_id"
    )
    with psycopg.connect(PG_URL, options=f"-csearch_path={schema.name}") as conn:
        with conn.cursor() as cur, cur.copy(f"COPY record_versions ({cols}) FROM STDIN") as copy:
            buf = io.BytesIO()
            for line in _rows(versions, fnrs):
                buf.write(line)
                if buf.tell() > 4 << 20:
                    copy.write(buf.getvalue())
                    buf = io.BytesIO()
            copy.write(buf.getvalue())
        with (
            conn.cursor() as cur,
            cur.copy("COPY identifiers (id_key, system, value, kind, component) FROM STDIN") as copy,
        ):
            for fnr in fnrs:
                key = f"{ids.OID_FNR}|{fnr}"
                copy.write(f"{key}\t{ids.OID_FNR}\t{fnr}\tFNR\t{key}\n".encode())
        conn.execute("ANALYZE")
    return time.perf_counter() - t0


def _timed(name: str, clients: int, seconds: float, call: Callable[[Any], None], make: Callable[[], Any]) -> Timing:
    """Run ``call(client)`` in ``clients`` threads for ``seconds``; latencies of every call."""
    lat: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker() -> None:
        own: list[float] = []
        client = make()
        try:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                call(client)
                own.append(time.perf_counter() - t)
        finally:
            close = getattr(client, "close", None)
            if close:
                close()
        with lock:
            lat.extend(own)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    took = time.perf_counter() - t0
    lat.sort()
    p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: 0.0)
    return Timing(name, clients, len(lat), took, p(0.5), p(0.99))


def _serve(schema: PgSchema, workdir: Path, port: int, workers: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    cfg = workdir / "read-bench.yaml"
    cfg.write_text(
        f"bus: {{kind: embedded, path: {workdir / 'q.db'}}}\n"
        f"store: {{url: '{schema.sa_url}', pool_size: 8}}\n"
        f"log: {{level: warning}}\n"
        f"auth: {{mode: local, local: {{key_dir: {workdir / 'auth'}}}}}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    cli = [sys.executable, "-m", "engine.cli"]
    token = (
        subprocess.run(
            [*cli, "token", "-c", str(cfg), "--role", "clinician", "--hpr", "9144900", "--purpose", "TREAT"],
            env=env,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .strip()
    )
    with open(workdir / "read-serve.log", "ab") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [*cli, "serve", "-c", str(cfg), "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=log,
        )
    return proc, token, cfg


def measure(workdir: Path, versions: int, citizens: int, seconds: float = 5.0, workers: int = 2) -> ReadResult:
    """Seed, serve, time the API and the floor; the schema is dropped afterwards."""
    import httpx2 as httpx

    schema = PgSchema()
    proc = None
    try:
        seed_s = seed(schema, versions, citizens)
        port = 18000 + os.getpid() % 1000
        proc, token, _cfg = _serve(schema, workdir, port, workers)
        base = f"http://127.0.0.1:{port}/fhir"
        headers = {"Authorization": f"Bearer {token}"}
        fnr = _fnrs(1)[0]
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"{base}/Patient", params={"identifier": f"urn:oid:{ids.OID_FNR}|{fnr}"}, headers=headers)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("enjournal serve did not start") from None
                time.sleep(0.3)
        pid = r.json()["entry"][0]["resource"]["id"]
        code = "urn:oid:2.16.578.1.12.4.1.1.7280|" + _first_code()
        everything = f"{base}/Patient/{pid}/$everything"
        search = f"{base}/Observation?patient={pid}&code={code}"
        subject = f"{ids.OID_FNR}|{fnr}"

        def api(url: str) -> Callable[[Any], None]:
            def call(c: Any) -> None:
                resp = c.get(url)
                if resp.status_code != 200:
                    raise RuntimeError(f"read bench: HTTP {resp.status_code}")

            return call

        def floor_call(sql: str, args: tuple[Any, ...]) -> Callable[[Any], None]:
            def call(conn: Any) -> None:
                rows = conn.execute(sql, args).fetchall()
                orjson.dumps([{"key": r[0], "kind": r[1], "version": r[2], "content": r[3]} for r in rows])

            return call

        make_http = lambda: httpx.Client(headers=headers, timeout=30)  # noqa: E731
        make_pg = lambda: psycopg.connect(PG_URL, autocommit=True, options=f"-csearch_path={schema.name}")  # noqa: E731
        all_sql = "SELECT record_key, kind, version_hash, content FROM record_versions WHERE subject_key = %s"
        code_sql = all_sql + " AND kind = 'observation' AND content LIKE %s"
        api_t, floor_t = [], []
        for n in CONCURRENCY:
            api_t.append(_timed("$everything (200 records)", n, seconds, api(everything), make_http))
            floor_t.append(_timed("$everything floor", n, seconds, floor_call(all_sql, (subject,)), make_pg))
            api_t.append(_timed("Observation?patient&code", n, seconds, api(search), make_http))
            like = f'%"code":"{_first_code()}"%'
            floor_t.append(
                _timed("Observation?patient&code floor", n, seconds, floor_call(code_sql, (subject, like)), make_pg)
            )
        return ReadResult(versions, citizens, seed_s, api_t, floor_t, schema.name)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        schema.drop()


def _first_code() -> str:
    tpl = next(t for k, t in _templates() if k == "observation")
    found = orjson.loads(tpl.replace("@VAL@", "1").replace("@KEY@", "k").replace("@SUBJ@", "s"))
    return str(found["code"]["code"])


def goal_met(api: Timing, floor: Timing) -> bool:
    """p99 within 2 x the floor's p99 + 5 ms."""
    return api.p99_ms <= 2 * floor.p99_ms + 5.0


def summary(result: ReadResult) -> list[dict[str, Any]]:
    """One dict per (request, concurrency): the API's and the floor's figures and the goal."""
    out = []
    for a, f in zip(result.api, result.floor, strict=True):
        out.append(
            {
                "request": a.name,
                "clients": a.clients,
                "api_rps": round(a.rate, 1),
                "api_p50_ms": round(a.p50_ms, 2),
                "api_p99_ms": round(a.p99_ms, 2),
                "floor_rps": round(f.rate, 1),
                "floor_p50_ms": round(f.p50_ms, 2),
                "floor_p99_ms": round(f.p99_ms, 2),
                "goal": "PASS" if goal_met(a, f) else "MISS",
                "median_ratio": round(a.p50_ms / f.p50_ms, 1) if f.p50_ms else None,
            }
        )
    return out


def render(result: ReadResult) -> None:
    """Print the read section as a table."""
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=(
            f"read side: {result.versions:,} record versions, {result.citizens:,} citizens "
            f"(seeded in {result.seed_s:.0f} s)"
        )
    )
    for col in (
        "request",
        "clients",
        "API req/s",
        "API p50 ms",
        "API p99 ms",
        "floor req/s",
        "floor p50",
        "floor p99",
        "goal p99 <= 2 x floor + 5 ms",
    ):
        t.add_column(col)
    for r in summary(result):
        t.add_row(
            r["request"],
            str(r["clients"]),
            f"{r['api_rps']:,.0f}",
            f"{r['api_p50_ms']:.1f}",
            f"{r['api_p99_ms']:.1f}",
            f"{r['floor_rps']:,.0f}",
            f"{r['floor_p50_ms']:.1f}",
            f"{r['floor_p99_ms']:.1f}",
            r["goal"],
        )
    Console(width=200).print(t)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m bench.read", description=__doc__.split("\n")[0])
    p.add_argument("--versions", type=int, default=5_000_000)
    p.add_argument("--citizens", type=int, default=50_000)
    p.add_argument("--seconds", type=float, default=5.0, help="per request and concurrency")
    p.add_argument("--workers", type=int, default=2, help="enjournal serve --workers")
    p.add_argument("--workdir", type=Path, default=Path("var/bench"))
    p.add_argument("--json", type=Path)
    ns = p.parse_args(argv)
    ns.workdir.mkdir(parents=True, exist_ok=True)
    result = measure(ns.workdir.resolve(), ns.versions, ns.citizens, ns.seconds, ns.workers)
    render(result)
    if ns.json:
        ns.json.write_bytes(
            orjson.dumps({"seed_s": result.seed_s, "rows": summary(result)}, option=orjson.OPT_INDENT_2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
