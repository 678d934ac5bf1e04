"""Inbox hardening of every directory adapter (hl7-file, kith-file, csv) on the real RabbitMQ and PostgreSQL.

* Only regular files are read: symlinks to /etc/passwd and /proc/self/environ, a dangling one, a FIFO
  and a directory matching the pattern are moved (the entries themselves) to error/ with an
  INBOX_NOT_REGULAR reason; nothing of their targets reaches the queue, raw_archive, dead_letters or
  the logs, and the valid file beside them is journaled.
* An inbox that stops being a directory for a while: the adapter thread lives on, logs
  inbox.unavailable and inbox.available once each, and picks up the next file by itself.
* KITH: a file written in two halves with a 3 s pause ends archived as one good message; an outbox
  that is not writable for a few polls does not make the file be published again (one raw_archive
  row), and the receipt is written once the outbox works.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from engine.bus.rabbit import RabbitBus
from engine.store import Store
from engine.store import schema as s
from engine.worker import Mapper, Worker
from tests.integration import inbox_kinds as k

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]
ENVIRON = Path("/proc/self/environ").read_bytes()


@pytest.fixture
def store(pg_url: str) -> Any:
    st = Store(pg_url)
    yield st
    st.close()


def _journal(bus: RabbitBus, st: Store, a: Any) -> None:
    """Consume everything on the queue into the store with the real worker."""
    Worker(bus, st, Mapper(k.mapper_options(a)), batch_size=100, batch_wait=0.05).run(
        threading.Event(), until_idle=True
    )
    assert bus.depth()["work"] == 0


def _stored(st: Store) -> tuple[list[bytes], list[dict[str, Any]]]:
    with st.engine.connect() as c:
        raws = [bytes(r[0]) for r in c.execute(sa.select(s.raw_archive.c.raw))]
        dead = [dict(r._mapping) for r in c.execute(sa.select(s.dead_letters))]
    return raws, dead


def _plant(inbox: Path, kind: str) -> dict[str, bool]:
    """Entries that are not regular files, named to match the pattern -> whether it is a symlink."""
    names = {stem: k.name(kind, stem) for stem in ("passwd", "environ", "dangling", "fifo", "folder")}
    os.symlink("/etc/passwd", inbox / names["passwd"])
    os.symlink("/proc/self/environ", inbox / names["environ"])
    os.symlink(inbox / "gone", inbox / names["dangling"])
    os.mkfifo(inbox / names["fifo"])
    (inbox / names["folder"]).mkdir()
    return {name: stem in ("passwd", "environ", "dangling") for stem, name in names.items()}


@pytest.mark.parametrize("kind", k.KINDS)
def test_only_regular_files_are_read(kind: str, tmp_path: Path, rabbit_bus: RabbitBus, store: Store) -> None:
    a = k.adapter(kind, tmp_path, rabbit_bus)
    planted = _plant(a.settings.directory, kind)
    good, data = k.valid(kind, 1)
    k.drop(a.settings.directory, good, data)
    passwd = Path("/etc/passwd").read_bytes()
    with structlog.testing.capture_logs() as logs, k.run_adapter(a):
        assert k.wait(lambda: k.archived(a) == [good] and all(os.path.lexists(a.settings.errors / p) for p in planted))
    _journal(rabbit_bus, store, a)

    raws, dead = _stored(store)
    assert len(raws) == 1 and not dead
    assert b"root:" not in raws[0] and ENVIRON[:40] not in raws[0]
    if kind != "csv":
        assert raws[0] == data
    for entry, is_link in planted.items():
        moved = a.settings.errors / entry
        assert moved.is_symlink() == is_link
        assert (a.settings.errors / (entry + ".reason")).read_text().startswith("INBOX_NOT_REGULAR: ")
    assert os.readlink(a.settings.errors / k.name(kind, "passwd")) == "/etc/passwd"
    assert Path("/etc/passwd").read_bytes() == passwd
    assert sorted(p.name for p in a.settings.directory.iterdir() if not p.name.startswith(".")) == ["archive", "error"]
    refused = [e for e in logs if e["event"] == "inbox.not_regular"]
    assert len(refused) == len(planted)
    text = repr(logs)
    assert "root:" not in text and not any(entry in text for entry in planted)


@pytest.mark.parametrize("kind", k.KINDS)
def test_an_inbox_that_cannot_be_listed_is_waited_for(
    kind: str, tmp_path: Path, rabbit_bus: RabbitBus, store: Store
) -> None:
    """The inbox path becomes a regular file (ENOTDIR even for root) for a while, then a directory again."""
    a = k.adapter(kind, tmp_path, rabbit_bus)
    inbox, away = a.settings.directory, tmp_path / "away"
    first, later = k.valid(kind, 1), k.valid(kind, 2)
    with structlog.testing.capture_logs() as logs, k.run_adapter(a) as thread:
        k.drop(inbox, *first)
        assert k.wait(lambda: k.archived(a) == [first[0]])
        inbox.rename(away)
        inbox.write_bytes(b"not a directory")
        assert k.wait(lambda: any(e["event"] == "inbox.unavailable" for e in logs))
        time.sleep(1.0)  # several polls, backing off
        assert thread.is_alive()
        inbox.unlink()
        away.rename(inbox)
        k.drop(inbox, *later)
        assert k.wait(lambda: k.archived(a) == sorted([first[0], later[0]]))
    states = [(e["event"], e.get("errno")) for e in logs if e["event"].startswith("inbox.")]
    assert states == [("inbox.unavailable", "ENOTDIR"), ("inbox.available", None)]
    _journal(rabbit_bus, store, a)
    assert len(_stored(store)[0]) == 2


@pytest.mark.slow
def test_a_kith_file_written_with_a_pause_is_archived_whole(
    tmp_path: Path, rabbit_bus: RabbitBus, store: Store
) -> None:
    """Half a document, a 3 s pause, the rest; stable_seconds 2 and the default grace: never rejected."""
    a = k.adapter("kith-file", tmp_path, rabbit_bus, stable_seconds=2, incomplete_grace_seconds=60, poll_interval=0.2)
    name, data = k.valid("kith-file", 7)
    path = a.settings.directory / name
    with structlog.testing.capture_logs() as logs, k.run_adapter(a):
        with open(path, "wb") as w:
            w.write(data[: len(data) // 2])
            w.flush()
            time.sleep(3.0)
            w.write(data[len(data) // 2 :])
        assert k.wait(lambda: k.archived(a) == [name])
    assert list(a.settings.errors.iterdir()) == []
    assert [e["event"] for e in logs if e["event"] == "inbox.incomplete_waiting"] == ["inbox.incomplete_waiting"]
    _journal(rabbit_bus, store, a)
    raws, dead = _stored(store)
    assert raws == [data] and not dead
    assert [p.name[:10] for p in a.settings.outbox.iterdir()] == ["apprec-T7-"]


def test_a_kith_outbox_that_is_not_writable_never_republishes(
    tmp_path: Path, rabbit_bus: RabbitBus, store: Store
) -> None:
    """The outbox replaced by a regular file for a few polls (mkdir fails even as root), then fixed."""
    a = k.adapter("kith-file", tmp_path, rabbit_bus, poll_interval=0.05)
    outbox = a.settings.outbox  # not there yet: the first receipt creates it
    outbox.write_bytes(b"not a directory")
    name, data = k.valid("kith-file", 3)
    with structlog.testing.capture_logs() as logs, k.run_adapter(a):
        k.drop(a.settings.directory, name, data)
        assert k.wait(lambda: any(e["event"] == "outbox.unavailable" for e in logs))
        time.sleep(1.5)  # many polls: the file is still there, remembered as published
        assert (a.settings.directory / name).exists()
        outbox.unlink()
        outbox.mkdir()
        assert k.wait(lambda: k.archived(a) == [name], limit=40)
    receipts = list(outbox.iterdir())
    assert len(receipts) == 1 and receipts[0].name.startswith("apprec-T3-")
    states = [e["event"] for e in logs if e["event"].startswith("outbox.")]
    assert states == ["outbox.unavailable", "outbox.available"]
    assert len([e for e in logs if e["event"] == "kith.archived"]) == 1
    _journal(rabbit_bus, store, a)
    raws, _ = _stored(store)
    assert raws == [data]
