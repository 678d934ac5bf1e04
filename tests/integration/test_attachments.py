"""Attachments on SQLite and PostgreSQL: stored once per sha256 with the batch's records, read back intact,
checked against their references, kept out of the table when too large, and never left behind by an
envelope the store isolates."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import orjson
import sqlalchemy as sa

from engine.auth.tokens import os_user
from engine.envelope import Envelope
from engine.journal_view import load_journal, summary_line
from engine.outcome import Outcome
from engine.store import Store
from engine.store import schema as s
from engine.worker import Mapper
from tests.helpers import fnr
from tests.integration import attachment_mapping as am
from tests.integration.pipeline_util import cli


def env(n: int, variant: str = "shared", size: int = 4096, env_id: str | None = None) -> Envelope:
    extra = {"id": env_id} if env_id else {}
    return Envelope.build(
        am.message(n, variant, size), adapter="t", mapping=am.NAME, content_type="text/plain", **extra
    )


def mapped(*envs: Envelope, mapper: Mapper | None = None) -> list[Outcome]:
    m = mapper or Mapper()
    return [m(e) for e in envs]


def stored_rows(store: Store) -> list[tuple[str, str, int, str]]:
    t = s.attachments
    with store.engine.connect() as c:
        q = sa.select(t.c.sha256, t.c.content_type, t.c.size, t.c.envelope_id).order_by(t.c.sha256)
        return [tuple(r) for r in c.execute(q)]  # type: ignore[misc]


def test_two_records_sharing_one_attachment_store_it_once_and_it_reads_back(any_store: Store) -> None:
    data = am.pdf_bytes(1)
    sha = hashlib.sha256(data).hexdigest()
    stats = any_store.commit_batch(mapped(env(1, env_id="first")))
    assert stats.versions_new == 2 and stats.attachments_new == 1
    assert stored_rows(any_store) == [(sha, "application/pdf", len(data), "first")]
    found = any_store.attachment(sha.upper())
    assert found is not None
    content_type, read = found
    assert content_type == "application/pdf" and read == data and hashlib.sha256(read).hexdigest() == sha
    assert any_store.attachment("0" * 64) is None


def test_replay_and_resend_store_nothing_new(any_store: Store) -> None:
    first = mapped(env(2, "two", env_id="e-first"))
    assert any_store.commit_batch(first).attachments_new == 2
    before = stored_rows(any_store)
    again = any_store.commit_batch(first)  # redelivery of the same envelope
    resent = any_store.commit_batch(mapped(env(2, "two", env_id="e-resent"), env(2, "two", env_id="e-third")))
    assert again.attachments_new == 0 and resent.attachments_new == 0
    assert stored_rows(any_store) == before and {r[3] for r in before} == {"e-first"}


def test_many_envelopes_in_one_batch_carrying_the_same_attachment(any_store: Store) -> None:
    """40 envelopes of 20 patients: 20 attachments, each stored once; then 40 new ones in one batch."""
    stats = any_store.commit_batch(mapped(*(env(i % 20, env_id=f"b{i}") for i in range(40))))
    assert stats.attachments_new == 20 and len(stored_rows(any_store)) == 20
    assert any_store.commit_batch(mapped(*(env(i, env_id=f"c{i}") for i in range(40)))).attachments_new == 20
    fresh = mapped(*(env(100 + i, size=2000 + i) for i in range(40)))  # 40 new ones (PostgreSQL: binary COPY)
    assert any_store.commit_batch(fresh).attachments_new == 40
    found = any_store.attachment(hashlib.sha256(am.pdf_bytes(139, 2039)).hexdigest())
    assert found == ("application/pdf", am.pdf_bytes(139, 2039))


def test_attachments_that_do_not_match_their_references_are_dead_letters(any_store: Store) -> None:
    """Bytes and references are checked at the mapping step; references of a message that carries no bytes
    are checked by the store (which isolates that envelope), with the same codes."""
    outcomes = mapped(env(3, "badhash"), env(4, "badsize"), env(5, "missing"), env(6, env_id="good"), env(7, "orphan"))
    dead = {o.reason for o in outcomes if o.dead}
    assert dead == {
        "ATTACHMENT_HASH_MISMATCH: attachment 0: the bytes do not hash to its sha256",
        "ATTACHMENT_SIZE_MISMATCH: record 0 (document) attachments[0]: size is not the length of its bytes",
        "ATTACHMENT_UNREFERENCED: an attachment no record refers to",
    }
    stats = any_store.commit_batch(outcomes)
    assert [o.reason for o in stats.rejected] == [
        "ATTACHMENT_MISSING: record 0 (document) attachments[0]: no bytes for this sha256 in the message"
    ]
    assert stats.dead_letters == 4 and stats.attachments_new == 1
    assert [r[3] for r in stored_rows(any_store)] == ["good"]
    assert {d["reason_code"] for d in any_store.dead_letters()} == {
        "ATTACHMENT_HASH_MISMATCH",
        "ATTACHMENT_SIZE_MISMATCH",
        "ATTACHMENT_MISSING",
        "ATTACHMENT_UNREFERENCED",
    }


def test_an_isolated_envelope_leaves_no_attachment_behind(any_store: Store) -> None:
    """The store isolates the envelope it cannot write: its attachment is not stored, unless another envelope
    of the batch also carries the same bytes (then it is stored for that one, which refers to it)."""
    good = [env(10 + i, env_id=f"g{i}") for i in range(3)]
    batch = mapped(good[0], env(20, "naive", env_id="bad"), good[1], env(11, "naive", env_id="bad-shared"), good[2])
    stats = any_store.commit_batch(batch)
    assert sorted(o.envelope.id for o in stats.rejected) == ["bad", "bad-shared"]
    shas = {r[0]: r[3] for r in stored_rows(any_store)}
    expected = {hashlib.sha256(am.pdf_bytes(n)).hexdigest(): f"g{n - 10}" for n in (10, 11, 12)}
    assert shas == expected  # patient 20's attachment is absent; patient 11's is stored for g1


def test_an_attachment_above_the_limit_is_not_stored_and_its_records_are_flagged(
    any_store: Store, tmp_path: Path
) -> None:
    outcomes = mapped(env(6, size=5000), env(7, size=800), mapper=Mapper(max_attachment_bytes=1000))
    big = outcomes[0].result
    assert big is not None and not big.attachments
    assert [r.flags for r in big.records] == [("ATTACHMENT_TOO_LARGE",), ("ATTACHMENT_TOO_LARGE",)]
    assert big.records[0].attachments[0].size == 5000  # the reference stays
    stats = any_store.commit_batch(outcomes)
    assert stats.attachments_new == 1 and [r[2] for r in stored_rows(any_store)] == [800]
    view = load_journal(any_store, fnr(6))
    assert view is not None
    doc = next(r for r in view.to_json()["records"] if r["kind"] == "document")
    assert doc["attachments"][0]["stored"] is False
    assert summary_line(doc) == 'lab-report: Svarrapport [application/pdf, 4.9 KiB, "Svarrapport", not stored]'


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return cli(config, *args, text=False)  # type: ignore[no-any-return]


def test_journal_shows_attachments_and_the_cli_writes_their_bytes(tmp_path: Path, sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        store.commit_batch(mapped(env(8, "two", size=20_000)))
    finally:
        store.close()
    config = tmp_path / "enjournal.yaml"
    config.write_text(f"store: {{url: '{sqlite_url}'}}\nbus: {{kind: embedded, path: '{tmp_path / 'bus.db'}'}}\n")
    data = am.pdf_bytes(8, 20_000)
    sha = hashlib.sha256(data).hexdigest()
    table = _cli(config, "journal", fnr(8))
    assert table.returncode == 0, table.stderr
    shown = table.stdout.decode()
    assert sha in shown and "19.5 KiB" in shown and "image/tiff" in shown and "%PDF" not in shown
    doc = next(
        r for r in json.loads(_cli(config, "journal", fnr(8), "--json").stdout)["records"] if r["kind"] == "document"
    )
    assert doc["attachments"] == [
        {
            "content_type": "application/pdf",
            "size": 20_000,
            "sha256": sha,
            "description": "Svarrapport",
            "title": "report.pdf",
            "stored": True,
        },
        {
            "content_type": "image/tiff",
            "size": 1000,
            "sha256": hashlib.sha256(am.pdf_bytes(100_008, 1000)).hexdigest(),
            "description": "Scan",
            "stored": True,
        },
    ]
    to_stdout = _cli(config, "attachment", sha)
    assert to_stdout.returncode == 0 and to_stdout.stdout == data
    assert to_stdout.stderr.decode().strip() == "application/pdf 20000 bytes"
    out = tmp_path / "out.pdf"
    assert _cli(config, "attachment", sha, "-o", str(out)).returncode == 0 and out.read_bytes() == data
    assert _cli(config, "attachment", "f" * 64).returncode == 1
    audit = json.loads(_cli(config, "audit", "--actor", f"os:{os_user()}", "--json").stdout)
    reads = [(a["resource_type"], a["reason_code"], a["resource_ids"]) for a in audit if a["resource_type"] == "Binary"]
    assert reads == [("Binary", "ALLOWED_LOCAL", [sha])] * 2 + [("Binary", "NOT_FOUND", ["f" * 64])]
    assert {a["citizen_key"] for a in audit if a["reason_code"] == "ALLOWED_LOCAL"} == {
        f"2.16.578.1.12.4.1.4.1|{fnr(8)}"
    }
    assert _cli(config, "attachment", "not-a-hash").returncode == 2


def test_a_running_engine_stores_attachments_under_its_configured_limit(tmp_path: Path, store_url: str) -> None:
    """Through the bus and a worker of a runtime: ``store.max_attachment_bytes`` reaches the mapping step."""
    from engine.config import parse_config
    from engine.runtime import Runtime
    from tests.integration.pipeline_util import bus_section

    cfg = parse_config(
        {"bus": bus_section("embedded", tmp_path), "store": {"url": store_url, "max_attachment_bytes": 1000}}
    )
    rt = Runtime.build(cfg)
    rt.bus.publish([env(30, size=5000), env(31, size=800), env(31, size=800, env_id="again")])
    rt.start(adapters=[])
    try:
        for _ in range(200):
            if rt.bus.depth()["work"] == 0 and rt.store.counts()["received"].get("t") == 3:
                break
            time.sleep(0.05)
        rows = stored_rows(rt.store)
        flags = {r["record_key"]: orjson.loads(r["content"]).get("flags") for r in rt.store.all_versions()}
    finally:
        assert rt.shutdown(10)
    assert [(r[2], r[3]) for r in rows] == [(800, rows[0][3])] and rows[0][3] != "again"
    assert flags["att|30|doc"] == ["ATTACHMENT_TOO_LARGE"] and flags["att|31|doc"] == []
