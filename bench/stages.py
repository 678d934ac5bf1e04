"""Per-stage microbenchmarks: the engine's own code on the benchmark's data, in µs per message.

Stages (each timed alone, in this process, on the same synthetic messages as the paths):

* ``parse``: :func:`mappings.hl7v2.parser.parse` of an ORU^R01;
* ``triage``: the HL7 adapters' MSH check + envelope (:func:`adapters.hl7_intake.triage.triage`);
* ``map``: the mappings (HL7 ADT^A08, ORU^R01, KITH Svarrapport, CSV per row);
* ``pydantic``: the canonical models' share of an ORU^R01 (validate its 8 records, serialise each);
* ``encode`` / ``decode``: the envelope as a work-queue message and back (:mod:`engine.bus.wire`);
* ``publish``: ``RabbitBus.publish`` of batches of 500 (streaming confirms) on a queue of its own;
* ``consume``: ``RabbitConsumer.fetch(500)`` + multi-ack of the same messages;
* ``kith adapter intake``: ``KithFileAdapter.handle`` per Svarrapport file (inspect, publish, AppRec, move);
* ``store``: ``Store.commit_batch`` of 500 mapped messages into a fresh PostgreSQL schema: ADT whose
  patients are all new (one identity edge each), ADT of the same (now known) patients, ORU of them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench import data
from bench.proc import PgSchema, delete_topology, rabbit_section, tag
from engine.envelope import Envelope
from engine.model import MapContext

MODELS_ORU = "pydantic: validate + serialise an ORU's 8 records (inside map + store)"


@dataclass
class StageResult:
    name: str
    messages: int
    us_per_msg: float


def _time(name: str, n: int, fn: Callable[[], Any]) -> StageResult:
    t0 = time.perf_counter()
    fn()
    return StageResult(name, n, (time.perf_counter() - t0) / max(n, 1) * 1e6)


def _each(fn: Callable[[Any], None], items: Sequence[Any]) -> None:
    for x in items:
        fn(x)


def _ctx(charset: str | None = None, options: dict[str, Any] | None = None) -> MapContext:
    return MapContext(
        envelope_id="bench",
        adapter="bench",
        source_system="bench",
        received_at=datetime.now(UTC),
        charset=charset,
        options=options or {},
    )


def _envelopes(raws: Sequence[bytes]) -> list[Envelope]:
    return [
        Envelope.build(
            r,
            adapter="bench",
            mapping="hl7v2",
            content_type="application/hl7-v2",
            charset="8859/1",
            source_system="bench",
        )
        for r in raws
    ]


def cpu_stages(n: int, pats: list[data.Patient], seed: int = 42) -> list[StageResult]:
    from adapters.hl7_intake import Hl7Options, triage
    from engine.bus import wire
    from mappings.hl7v2 import map_message as hl7_map
    from mappings.hl7v2.parser import parse

    oru = [data.oru_r01(i, pats[i % len(pats)]) for i in range(n)]
    adt = [data.adt_a08(i, pats[i % len(pats)]) for i in range(n)]
    envs, ctx, opts = _envelopes(oru), _ctx("8859/1"), Hl7Options()
    bodies = [wire.encode(e) for e in envs]
    frames = [wire.encode_frame(envs[i : i + 64]) for i in range(0, n, 64)]
    out = [
        _time("parse hl7 ORU", n, lambda: [parse(r) for r in oru]),
        _time(
            "triage hl7 ORU (adapter)",
            n,
            lambda: [triage(r, adapter="b", options=opts, source_system=None) for r in oru],
        ),
        _time("map hl7 ADT^A08", n, lambda: [hl7_map(r, ctx) for r in adt]),
        _time("map hl7 ORU^R01 (8 OBX)", n, lambda: [hl7_map(r, ctx) for r in oru]),
        _models_stage(n, [hl7_map(r, ctx).records for r in oru]),
        _time("encode envelope (wire.encode)", n, lambda: [wire.encode(e) for e in envs]),
        _time("decode envelope (wire.decode)", n, lambda: [wire.decode(wire.ENVELOPE_TYPE, None, b) for b in bodies]),
        _time(
            "encode frames of 64 (per envelope)",
            n,
            lambda: [wire.encode_frame(envs[i : i + 64]) for i in range(0, n, 64)],
        ),
        _time(
            "decode frames of 64 (per envelope)", n, lambda: [wire.decode_all(wire.FRAME_TYPE, None, f) for f in frames]
        ),
    ]
    return out + _kith_csv_stages(n, pats, seed)


def _models_stage(n: int, records: list[Sequence[Any]]) -> StageResult:
    """What the canonical models alone cost per ORU^R01: validating its records from their fields (as the
    mapping builds them) and serialising each to the JSON the store hashes and writes."""
    fields = [[(type(r), dict(r)) for r in recs] for recs in records]

    def run() -> None:
        for recs in fields:
            for cls, f in recs:
                cls.model_validate(f).content_json()

    return _time(MODELS_ORU, n, run)


def _kith_csv_stages(n: int, pats: list[data.Patient], seed: int) -> list[StageResult]:
    out: list[StageResult] = []
    template = data.kith_template()
    if template:
        from mappings.kith import map_message as kith_map

        docs = [data.svarrapport(i, pats[i % len(pats)], template, seed) for i in range(min(n, 1000))]
        ctx = _ctx()
        out.append(_time("map kith Svarrapport", len(docs), lambda: [kith_map(d, ctx) for d in docs]))
    from mappings.csv_decl import map_message as csv_map
    from mappings.csv_decl import parse_spec

    rows = list(data.csv_rows(n, pats, seed))
    head = ";".join(f'"{c}"' for c in data.CSV_HEADER)
    chunks = [("\n".join([head, *rows[i : i + 500]]) + "\n").encode() for i in range(0, n, 500)]
    ctx = _ctx("utf-8", parse_spec(data.csv_spec()).model_dump(mode="json", exclude_none=True))
    out.append(_time("map csv (per row, chunks of 500)", n, lambda: [csv_map(c, ctx) for c in chunks]))
    return out


def bus_stages(n: int, pats: list[data.Patient], workdir: Path) -> list[StageResult]:
    from engine.bus.rabbit import RabbitBus
    from engine.config import RabbitBusConfig

    section = rabbit_section(tag())
    bus = RabbitBus(RabbitBusConfig(**section))
    bus.declare()
    envs = _envelopes([data.oru_r01(i, pats[i % len(pats)]) for i in range(n)])
    try:

        def publish() -> None:
            for i in range(0, n, 500):
                bus.publish(envs[i : i + 500])

        pub = _time("publish (RabbitBus, batches of 500)", n, publish)
        out = [pub, _time("consume (fetch 500 + multi-ack)", n, lambda: _drain(bus, n))]
        k = min(n, 300)
        out.append(
            _time(
                "publish one envelope per call (confirm wait)", k, lambda: _each(bus.publish, [[e] for e in envs[:k]])
            )
        )
        _drain(bus, k)
        out.append(
            _time(
                "kombu publish, confirm per message (the alternative client)",
                k,
                lambda: _kombu_publish(section, envs[:k]),
            )
        )
        _drain(bus, k)
        return out + _kith_intake(bus, min(n, 500), pats, workdir)
    finally:
        bus.close()
        delete_topology(section)


def _kombu_publish(section: dict[str, Any], envs: list[Envelope]) -> None:
    """kombu's publisher confirms are synchronous per message: measured beside pika's streaming ones."""
    import kombu

    with kombu.Connection("amqp://guest:guest@127.0.0.1:5672//", transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer(
            exchange=kombu.Exchange(section["exchange"], type="direct", passive=True), routing_key="envelope"
        )
        for e in envs:
            producer.publish(
                e.raw,
                headers={k: v for k, v in e.headers().items() if v is not None},
                delivery_mode=2,
                mandatory=True,
                retry=False,
            )


def _kith_intake(bus: Any, n: int, pats: list[data.Patient], workdir: Path) -> list[StageResult]:
    """The KITH adapter's work per file, as its poll loop does it: a batch of files is read, inspected and
    published (one confirm), then their AppRecs are written (one concurrent fsync round) and they are moved."""
    template = data.kith_template()
    try:
        from adapters.kith_file import Settings, build
    except ImportError:
        return []
    if not template:
        return []
    d = workdir / f"kith-intake-{tag()}"
    settings = Settings(directory=d / "in", outbox=d / "out", stable_seconds=0, sender_her_id="8800010")
    adapter = build("bench-kith", settings, SimpleNamespace(bus=bus, keys=None))
    settings.ensure_dirs()
    files = [d / "in" / f"s{i:05d}.xml" for i in range(n)]
    for i, f in enumerate(files):
        f.write_bytes(data.svarrapport(i, pats[i % len(pats)], template))
    batches = [files[i : i + settings.max_batch] for i in range(0, n, settings.max_batch)]
    res = _time(
        f"kith adapter intake per file (batches of {settings.max_batch}: publish, AppRec, move)",
        n,
        lambda: _each(adapter.handle_batch, batches),
    )
    shutil.rmtree(d, ignore_errors=True)
    return [res]


def _drain(bus: Any, n: int) -> None:
    consumer, got = bus.consumer(1000), 0
    try:
        while got < n:
            batch = consumer.fetch(500, 0.05)
            consumer.ack(batch)
            got += len(batch)
    finally:
        consumer.close()


def store_stages(n: int, pats: list[data.Patient]) -> list[StageResult]:
    from engine.outcome import Outcome
    from engine.store import Store
    from mappings.hl7v2 import map_message as hl7_map

    schema = PgSchema()
    store = Store(schema.sa_url)
    ctx = _ctx("8859/1")

    def outcomes(make: Callable[..., bytes], start: int, people: list[data.Patient]) -> list[Outcome]:
        envs = _envelopes([make(i, people[i % len(people)]) for i in range(start, start + n)])
        return [Outcome(e, result=hl7_map(e.raw, ctx)) for e in envs]

    def commit(items: list[Outcome]) -> None:
        for i in range(0, len(items), 500):
            store.commit_batch(items[i : i + 500])

    try:
        people = data.patients(n, seed=7)
        adt_new, adt_known = outcomes(data.adt_a08, 0, people), outcomes(data.adt_a08, n, people)
        oru_known = outcomes(data.oru_r01, 0, people)
        return [
            _time("store ADT, every patient new (identity edge)", n, lambda: commit(adt_new)),
            _time("store ADT, patients known", n, lambda: commit(adt_known)),
            _time("store ORU (8 obs/msg), patients known", n, lambda: commit(oru_known)),
        ]
    finally:
        store.close()
        schema.drop()
