"""The HL7 file adapter read as a stream: groups, limits, batch integrity, charsets (embedded bus)."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from adapters.files import open_inbox_file
from adapters.hl7_file import Hl7FileAdapter, Settings, build
from adapters.mllp.client import synthetic_adt
from engine.bus.embedded import EmbeddedBus
from engine.envelope import Envelope
from engine.store import Store
from tests.unit.mllp.helpers import Runtime, drain


def make(tmp_path: Path, bus: Any, store: Any, **kw: Any) -> Hl7FileAdapter:
    s = Settings(type="hl7-file", directory=tmp_path / "in", stable_seconds=0, source_system="lab", **kw)
    a = build("lab-files", s, Runtime(bus, store))
    a.settings.ensure_dirs()  # run() creates them; check() creates nothing
    a.check()
    return a


def by_index(envs: list[Envelope]) -> list[Envelope]:
    return sorted(envs, key=lambda e: (e.attributes.get("scope") == "file", int(e.attributes.get("index", -1))))


def batch_file(*msgs: bytes, bts: bytes | None = None, fts: bytes | None = None) -> bytes:
    out = b"FHS|^~\\&|LAB|OUS\rBHS|^~\\&|LAB|OUS\r" + b"".join(msgs)
    out += b"BTS|" + bts + b"\r" if bts is not None else b""
    return out + (b"FTS|" + fts + b"\r" if fts is not None else b"")


def test_large_file_goes_out_in_groups_count_on_the_last(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store, publish_group_messages=3)
    f = a.settings.directory / "many.hl7"
    f.write_bytes(b"".join(synthetic_adt(i) for i in range(7)))
    a.handle(f)
    envs = by_index(drain(bus))
    assert [e.attributes["index"] for e in envs] == [str(i) for i in range(7)]
    assert [e.attributes.get("count") for e in envs] == [None] * 6 + ["7"]
    assert all(e.dedup_key for e in envs) and (a.settings.archive / "many.hl7").exists()


def test_message_over_the_limit_rejected_once_without_its_bytes(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store, max_message_bytes=2000)
    big = synthetic_adt(2).replace(b"\rPID|", b"\rOBX|1|ED|" + b"Q" * 5000 + b"\rPID|")
    f = a.settings.directory / "big.hl7"
    f.write_bytes(synthetic_adt(1) + big + synthetic_adt(3))
    a.handle(f)
    envs = by_index(drain(bus))
    assert [e.rejection.code if e.rejection else "" for e in envs] == ["", "HL7_MESSAGE_TOO_LARGE", ""]
    assert (
        envs[1].raw == b""
        and envs[1].dedup_key is None
        and "bytes exceeds max_message_bytes=2000" in str(envs[1].rejection)
    )
    reason = (a.settings.archive / "big.hl7.reason").read_text()
    assert reason.startswith("message 1: HL7_MESSAGE_TOO_LARGE") and "Q" not in reason
    a.handle(f)  # gone: nothing happens again
    assert drain(bus) == []


def test_truncated_batch_waits_while_young_then_rejects_the_cut_message(
    tmp_path: Path, bus: EmbeddedBus, store: Store
) -> None:
    a = make(tmp_path, bus, store, incomplete_grace_seconds=0.5)
    f = a.settings.directory / "cut.hl7"
    f.write_bytes(batch_file(synthetic_adt(1), synthetic_adt(2))[:-40])  # cut inside the last message's PID
    a.handle(f)
    assert f.exists() and drain(bus) == []  # its writer may only be pausing
    time.sleep(0.6)  # unchanged for the grace now
    a.handle(f)
    envs = by_index(drain(bus))
    assert [e.rejection.code if e.rejection else "" for e in envs] == ["", "HL7_BATCH_TRUNCATED"]
    assert envs[1].dedup_key is None and envs[1].attributes["count"] == "2"
    reason = (a.settings.archive / "cut.hl7.reason").read_text()
    assert reason.startswith("message 1: HL7_BATCH_TRUNCATED")


def test_count_mismatch_reported_intact_messages_go_through(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store)
    f = a.settings.directory / "bts5.hl7"
    f.write_bytes(batch_file(synthetic_adt(1), synthetic_adt(2), bts=b"5", fts=b"1"))
    a.handle(f)
    envs = by_index(drain(bus))
    assert [e.rejection is None for e in envs] == [True, True, False]
    marker = envs[2]
    assert marker.raw == b"" and marker.attributes["scope"] == "file"
    assert str(marker.rejection) == "HL7_BATCH_COUNT_MISMATCH: BTS-1 of batch 1 says 5 messages, the file holds 2"
    assert (a.settings.archive / "bts5.hl7.reason").read_text().startswith("file: HL7_BATCH_COUNT_MISMATCH")


def test_bytes_outside_the_declared_charset_are_flagged(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store)
    msg = synthetic_adt(1).replace(b"|2.5", b"|2.5||||||8859/1", 1)
    f = a.settings.directory / "cp.hl7"
    f.write_bytes(
        msg
        + msg.replace(b"MSG00000001", b"MSG00000002").replace(b"\rPID|", "\rNTE|1||Prøve – “ok”\rPID|".encode("cp1252"))
    )
    a.handle(f)
    envs = by_index(drain(bus))
    assert [e.attributes.get("charset_repaired") for e in envs] == [None, "iso-8859-1->cp1252"]


def test_file_changed_while_read_is_left_for_the_next_poll(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store)
    f = a.settings.directory / "grow.hl7"
    f.write_bytes(synthetic_adt(1))
    inbox = open_inbox_file(f)
    with f.open("ab") as w:
        w.write(synthetic_adt(2))
    with inbox.reader() as r:
        a._handle(f, inbox, r)
    assert f.exists() and not any(a.settings.archive.iterdir())
    a.handle(f)
    assert len(drain(bus)) >= 2 and (a.settings.archive / "grow.hl7").exists()


def test_symlink_is_not_followed(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store)
    secret = tmp_path / "secret.hl7"
    secret.write_bytes(synthetic_adt(1))
    link = a.settings.directory / "link.hl7"
    link.symlink_to(secret)
    a.handle(link)
    assert drain(bus) == [] and (a.settings.errors / "link.hl7.reason").read_text().startswith("INBOX_NOT_REGULAR")


def _peak(a: Hl7FileAdapter, f: Path, copies: int, one: bytes) -> int:
    with f.open("wb") as w:
        for _ in range(copies):
            w.write(one)
    tracemalloc.start()
    try:
        a.handle(f)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_does_not_grow_with_the_file(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store)
    one = b"".join(synthetic_adt(i) for i in range(1000))
    small = _peak(a, a.settings.directory / "small.hl7", 4, one)
    large = _peak(a, a.settings.directory / "large.hl7", 24, one)
    assert (a.settings.archive / "large.hl7").exists() and len(drain(bus, 28_000)) == 28_000
    assert large < small * 1.3, (small, large)  # six times the messages, about the same peak: a group, not the file
