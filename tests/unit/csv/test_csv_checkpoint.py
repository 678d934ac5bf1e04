"""Checkpoints are atomic: a crash mid-write leaves the previous checkpoint, never a torn one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.csv import checkpoint as cpmod
from adapters.csv.checkpoint import Checkpoint, CheckpointStore

SHA = "ab" * 32


def test_roundtrip_and_done(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "state", "care decisions/x")
    assert store.load(SHA) == Checkpoint()
    store.save(SHA, Checkpoint(next_row=500, accepted=499, rejected=1, chunks=1, rejects_bytes=30))
    assert store.load(SHA).next_row == 500
    assert not store.is_done(SHA)
    store.mark_done(SHA, Checkpoint(next_row=900, accepted=899, rejected=1))
    assert store.is_done(SHA) and store.done_summary(SHA).accepted == 899  # type: ignore[union-attr]
    assert store.load(SHA) == Checkpoint()  # progress file removed
    assert all("/" not in p.name for p in (tmp_path / "state").iterdir())


def test_crash_before_rename_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CheckpointStore(tmp_path, "a")
    store.save(SHA, Checkpoint(next_row=1000))

    def boom(src: object, dst: object) -> None:
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.save(SHA, Checkpoint(next_row=2000))
    monkeypatch.undo()
    assert store.load(SHA).next_row == 1000


def test_torn_or_garbage_file_restarts_from_zero(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "a")
    (tmp_path / f"a.{SHA}.json").write_bytes(b'{"next_row": 12')
    assert store.load(SHA).next_row == 0


def test_write_atomic_fsyncs_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    cpmod.write_atomic(tmp_path / "x.json", b"{}")
    assert len(calls) >= 1 and (tmp_path / "x.json").read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
