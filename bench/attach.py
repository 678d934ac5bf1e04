"""Messages with a 1 MB PDF attachment: the engine's tail (decode, check, commit) against the database's floor.

Each pass runs in a spawned child process (its peak RSS is its own, not the benchmark's) holding one
transaction's messages at a time, on the same bytes, into a fresh PostgreSQL schema, ``per_tx`` messages
per transaction; the floor is measured before and after the engine and their mean taken:

* floor: psycopg's binary COPY of what such a message makes the store write (its raw bytes, base64 as
  a KITH ``Base64Container`` carries them, into a raw_archive-like table; the decoded PDF into an
  attachments-like table): what the database takes at best;
* engine: per message, the base64 decode a mapping does (the attachment's one copy), the mapping step's
  check (:func:`engine.store.attachments.screen`) and ``Store.commit_batch`` of the batch (raw archive,
  a document record referring to the attachment, the attachment once).

The ratio is engine / floor (1.0: the engine adds nothing to the database's own cost).
"""

from __future__ import annotations

import base64
import hashlib
import multiprocessing as mp
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench.proc import PG_URL, PgSchema
from bench.rss import self_peak_kb

NAME = "store: message with a 1 MB PDF attachment (decode, check, commit)"
FLOOR = "attach floor: db COPY of its raw bytes + the PDF (reference)"
SIZE = 1024 * 1024


@dataclass
class AttachResult:
    messages: int
    floor_s: float
    engine_s: float
    rss_mb: float
    base_rss_mb: float


def _pdf(i: int, size: int = SIZE) -> bytes:
    """``size`` incompressible bytes starting like a PDF (a scanned report is compressed already)."""
    seed = hashlib.sha256(str(i).encode()).digest()
    blocks = bytearray(b"%PDF-1.4\n")
    while len(blocks) < size:
        seed = hashlib.sha256(seed).digest()
        blocks += seed
    return bytes(blocks[:size])


def _batches(n: int, per_tx: int) -> Iterator[list[bytes]]:
    """The messages, one transaction's worth at a time (the process holds one batch, as a worker does)."""
    for i in range(0, n, per_tx):
        yield [
            b"<Base64Container>" + base64.b64encode(_pdf(k)) + b"</Base64Container>"
            for k in range(i, min(i + per_tx, n))
        ]


def _pdf_of(raw: bytes) -> bytes:
    return base64.b64decode(raw[17:-18])


def _floor(n: int, per_tx: int) -> float:
    schema = PgSchema()
    try:
        with psycopg.connect(PG_URL, options=f"-csearch_path={schema.name}") as conn:
            conn.execute("CREATE TABLE f_raw (id text PRIMARY KEY, raw bytea NOT NULL)")
            conn.execute("CREATE TABLE f_att (sha256 text PRIMARY KEY, data bytea NOT NULL)")
            conn.execute("ALTER TABLE f_att ALTER COLUMN data SET STORAGE EXTERNAL")
            conn.commit()
            spent, k = 0.0, 0
            for raws in _batches(n, per_tx):
                t0 = time.perf_counter()
                with conn.cursor() as cur:
                    with cur.copy("COPY f_raw (id, raw) FROM STDIN (FORMAT BINARY)") as cp:
                        cp.set_types(["text", "bytea"])
                        for raw in raws:
                            k += 1
                            cp.write_row((f"r{k}", raw))
                    with cur.copy("COPY f_att (sha256, data) FROM STDIN (FORMAT BINARY)") as cp:
                        cp.set_types(["text", "bytea"])
                        for raw in raws:
                            pdf = _pdf_of(raw)
                            cp.write_row((hashlib.sha256(pdf).hexdigest(), pdf))
                conn.commit()
                spent += time.perf_counter() - t0
            return spent
    finally:
        schema.drop()


def _engine(n: int, per_tx: int) -> float:
    from engine.envelope import Envelope
    from engine.ids import OID_FNR
    from engine.model import Attachment, Coding, Document, Identifier, MappingResult, Provenance
    from engine.outcome import Outcome
    from engine.store import Store, attachments

    schema = PgSchema()
    store = Store(schema.sa_url)
    subject = Identifier(system=OID_FNR, value="01815012345", kind="FNR")
    when = datetime(2026, 3, 1, tzinfo=UTC)
    try:
        spent, k = 0.0, 0
        for raws in _batches(n, per_tx):
            t0 = time.perf_counter()
            batch = []
            for raw in raws:
                k += 1
                env = Envelope.build(raw, adapter="bench", mapping="bench", content_type="application/xml")
                att = Attachment.of(_pdf_of(raw), "application/pdf")
                doc = Document(
                    key=f"bench|attach|{k}",
                    subject=subject,
                    event_time=when,
                    provenance=Provenance(adapter="bench", envelope_id=env.id),
                    doc_type=Coding(code="lab-report"),
                    attachments=(att.ref("Svarrapport"),),
                )
                result = attachments.screen(MappingResult(records=(doc,), attachments=(att,)))
                batch.append(Outcome(env, result=result))
            store.commit_batch(batch)
            spent += time.perf_counter() - t0
        return spent
    finally:
        store.close()
        schema.drop()


def _child(what: str, n: int, per_tx: int, out: Any) -> None:  # runs in a spawned process
    base = self_peak_kb()
    if what == "engine":
        out.put((_engine(n, per_tx), self_peak_kb(), base))
    else:  # the floor before and after the engine's pass, as the main floor: their mean
        out.put((_floor(n, per_tx), self_peak_kb(), base))


def _spawned(what: str, n: int, per_tx: int) -> tuple[float, int, int]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(what, n, per_tx, q))
    p.start()
    res: tuple[float, int, int] = q.get(timeout=600)
    p.join(60)
    return res


def measure(n: int = 60, per_tx: int = 10) -> AttachResult:
    """Floor, engine, floor, each in a fresh spawned child (its peak RSS is that pass's own)."""
    first, _, _ = _spawned("floor", n, per_tx)
    engine_s, peak, base = _spawned("engine", n, per_tx)
    again, _, _ = _spawned("floor", n, per_tx)
    return AttachResult(n, (first + again) / 2, engine_s, peak / 1024, base / 1024)


def rows(res: AttachResult) -> list[Any]:
    """The floor row and the engine's row (rate, ratio to that floor, peak RSS of the child)."""
    from bench.report import Row

    n, mb = res.messages, res.messages * SIZE / 1e6
    note = f"{mb / res.engine_s:.0f} MB/s of PDF; peak RSS {res.rss_mb:.0f} MB (at start {res.base_rss_mb:.0f} MB)"
    return [
        Row("floor", FLOOR, n, res.floor_s, n / res.floor_s, 1.0, note=f"{mb / res.floor_s:.0f} MB/s of PDF"),
        Row("path", NAME, n, res.engine_s, n / res.engine_s, res.floor_s / res.engine_s, rss_mb=res.rss_mb, note=note),
    ]
