"""Reconciliation after a fault: the journal and the dead letters against what was sent.

Jepsen's counters, per fault:

* **lost**: a sent, well-formed message whose expected ``(record_key, version_hash)`` pairs are not
  all in ``record_versions``; or a malformed one with no dead letter (store) carrying its reason
  code (or, for a file truncated for good, no ``error/`` file with a ``.reason``).
* **duplicated**: a version row for a sent fact that the mapping would not write (a second version
  of the same key), or a row of a sent message (same ``source_message_id``) under a key the mapping
  would not produce (the same observation twice under different keys). A record key with two
  current rows is impossible by construction (:func:`engine.store.journal.current_versions`).
* **unexpected**: rows and dead letters nobody sent.
* **recovered**: messages in flight when a fault hit (sent, not yet in the journal) that arrived.

Plus **pii-in-logs**: valid national identity numbers (:func:`engine.ids.find_valid_numbers`) or
invented patient names found in any engine log, dead-letter reason (store and broker) or ``.reason``
file. Only counts and places are reported, never the values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import sqlalchemy as sa

from bench.chaos_data import MessageSet, control_id, expected_versions
from engine.bus import wire
from engine.ids import find_valid_numbers
from engine.store import schema as s
from engine.store.journal import current_versions


@dataclass
class Result:
    fault: str
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    recovered: int = 0
    pii: int = 0
    sent: int = 0
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a check other than the counters failed
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        if self.skipped is not None:
            return True
        return self.lost == 0 and self.duplicated == 0 and self.pii == 0 and not self.errors


@dataclass
class Snapshot:
    """At one fault point: which messages had been handed to the engine, which had arrived."""

    sent: set[str]
    arrived: set[str]


def arrived_ids(store_engine: sa.Engine) -> set[str]:
    """Control ids with at least one record version or a dead letter, right now."""
    rv, dl, ra = s.record_versions, s.dead_letters, s.raw_archive
    with store_engine.connect() as c:
        ids = {r[0] for r in c.execute(sa.select(rv.c.source_message_id).distinct()) if r[0]}
        raws = c.execute(sa.select(ra.c.raw).join(dl, dl.c.envelope_id == ra.c.envelope_id)).all()
    return ids | {cid for (raw,) in raws if (cid := control_id(bytes(raw)))}


def broker_dead_letters(amqp_url: str, queue: str) -> list[dict[str, Any]]:
    """Drain the broker's dead-letter queue: message id, reason header and raw bytes of each."""
    out: list[dict[str, Any]] = []
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                break
            reason = (props.headers or {}).get("x-enjournal-reason", "")
            reason = reason.decode() if isinstance(reason, bytes) else str(reason)
            # any form: a frame the broker itself dead-lettered holds several envelopes
            for env in wire.decode_all(props.content_type, props.headers, bytes(body)):
                out.append({"id": env.id, "reason": reason, "raw": env.raw})
    finally:
        conn.close()
    return out


def reconcile(
    result: Result,
    msgs: MessageSet,
    store_engine: sa.Engine,
    dlq: list[dict[str, Any]],
    truncated: dict[str, Path] | None = None,
    snapshots: Iterable[Snapshot] = (),
) -> None:
    """Fill the four counters of ``result`` (see the module docstring)."""
    rows, dead = _load(store_engine)
    by_id, truncated = msgs.by_id(), truncated or {}
    expected = {cid: set() if cid in truncated else expected_versions(m) for cid, m in by_id.items()}
    present = {(r["record_key"], r["version_hash"]) for r in rows}
    dead_codes = _dead_by_id(dead)
    arrived = _arrived(msgs, expected, present, dead_codes, truncated, result)
    result.sent = len(by_id)
    result.lost = len(by_id) - len(arrived)
    _count_rows(result, rows, expected, set(truncated))
    _check_dead(result, msgs, dead, dead_codes, dlq, set(truncated))
    _note_republished(result, store_engine)
    in_flight = set().union(*[(snap.sent - snap.arrived) for snap in snapshots])
    result.recovered = len(in_flight & arrived)


def _load(store_engine: sa.Engine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All record versions; all dead letters with their raw bytes."""
    dl, ra = s.dead_letters, s.raw_archive
    with store_engine.connect() as c:
        rows = [dict(r._mapping) for r in c.execute(sa.select(s.record_versions))]
        dead = [
            dict(r._mapping) for r in c.execute(sa.select(dl, ra.c.raw).join(ra, ra.c.envelope_id == dl.c.envelope_id))
        ]
    return rows, dead


def _count_rows(
    result: Result, rows: list[dict[str, Any]], expected: dict[str, set[tuple[str, str]]], truncated: set[str]
) -> None:
    """Rows the mapping would not write: a duplicate of a sent fact, or unexpected."""
    pairs = {p for v in expected.values() for p in v}
    keys = {k for k, _ in pairs}
    for r in rows:
        if (r["record_key"], r["version_hash"]) in pairs:
            continue
        sid = r["source_message_id"]
        if r["record_key"] in keys or (sid in expected and sid not in truncated):
            result.duplicated += 1
        else:
            result.unexpected += 1
    cur, _hist = current_versions(rows)
    result.duplicated += len(cur) - len({r["record_key"] for r in cur})


def _note_republished(result: Result, store_engine: sa.Engine) -> None:
    """Messages that reached the store in more than one envelope (published again after a fault)."""
    seen: dict[str, int] = {}
    with store_engine.connect() as c:
        for (raw,) in c.execute(sa.select(s.raw_archive.c.raw)):
            cid = control_id(bytes(raw))
            if cid:
                seen[cid] = seen.get(cid, 0) + 1
    again = sum(1 for n in seen.values() if n > 1)
    if again:
        result.notes.append(f"{again} message(s) published more than once (resent or re-read): harmless")


def _dead_by_id(dead: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for d in dead:
        cid = control_id(bytes(d["raw"]))
        if cid:
            out.setdefault(cid, set()).add(d["reason_code"])
    return out


def _arrived(
    msgs: MessageSet,
    expected: dict[str, set[tuple[str, str]]],
    present: set[tuple[str, str]],
    dead_codes: dict[str, set[str]],
    truncated: dict[str, Path],
    result: Result,
) -> set[str]:
    arrived: set[str] = set()
    for m in msgs.messages:
        if m.control_id in truncated:
            if dead_codes.get(m.control_id) or _reason_file(truncated[m.control_id]):
                arrived.add(m.control_id)
        elif m.malformed:
            codes = dead_codes.get(m.control_id, set())
            if m.expect_code in codes:
                arrived.add(m.control_id)
            elif codes:
                result.notes.append(f"{m.control_id}: dead-lettered as {sorted(codes)}, expected {m.expect_code}")
        elif expected[m.control_id] <= present:
            arrived.add(m.control_id)
    return arrived


def _reason_file(dropped: Path) -> bool:
    """A ``.reason`` file for the file dropped at ``dropped``, in its ``error/`` or ``archive/``."""
    return any(
        any(d.glob(dropped.name + "*.reason"))
        for d in (dropped.parent / "error", dropped.parent / "archive")
        if d.is_dir()
    )


def _check_dead(
    result: Result,
    msgs: MessageSet,
    dead: list[dict[str, Any]],
    dead_codes: dict[str, set[str]],
    dlq: list[dict[str, Any]],
    truncated: set[str],
) -> None:
    """Dead letters nobody expected; malformed messages missing on the broker's dead-letter queue."""
    by_id = msgs.by_id()
    for d in dead:
        cid = control_id(bytes(d["raw"]))
        m = by_id.get(cid or "")
        if m is None or not (m.malformed or m.control_id in truncated):
            result.unexpected += 1
            result.notes.append(f"unexpected dead letter {d['reason_code']}")
        if not d["reason"] or not d["reason_code"]:
            result.errors.append(f"dead letter {d['envelope_id']} without a reason")
    on_broker = {control_id(x["raw"]) for x in dlq if x["reason"]}
    if dead or dlq:
        result.notes.append(f"dead letters: {len(dead)} in the store, {len(dlq)} on the broker DLQ")
    missing = [
        m.control_id
        for m in msgs.messages
        if m.malformed and m.control_id in dead_codes and m.control_id not in on_broker
    ]
    if missing:
        result.notes.append(f"{len(missing)} dead letter(s) in the store but not on the broker DLQ")


def scan_pii(result: Result, msgs: MessageSet, texts: Iterable[tuple[str, str]]) -> None:
    """Count PII hits in ``(place, text)`` pairs; note the places only."""
    names, numbers = msgs.names(), msgs.numbers()
    for place, text in texts:
        hits = len(find_valid_numbers(text)) + sum(text.count(n) for n in numbers)
        hits += sum(text.count(n) for n in names)
        if hits:
            result.pii += hits
            result.notes.append(f"PII: {hits} hit(s) in {place}")


def pii_sources(
    logs: Iterable[Path], store_engine: sa.Engine, dlq: list[dict[str, Any]], dirs: Iterable[Path] = ()
) -> list[tuple[str, str]]:
    """Every text an operator could see: process logs, dead-letter reasons, ``.reason`` files."""
    out = [(p.name, p.read_text("utf-8", "replace")) for p in logs if p.exists()]
    with store_engine.connect() as c:
        out += [("dead_letters.reason", r[0]) for r in c.execute(sa.select(s.dead_letters.c.reason))]
    out += [("broker DLQ x-enjournal-reason", x["reason"]) for x in dlq]
    for d in dirs:
        out += [(p.name, p.read_text("utf-8", "replace")) for p in d.rglob("*.reason")]
    return out
