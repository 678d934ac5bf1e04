"""adapters.durable: many files written durably at once; a failing one does not stop the others."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters import durable
from adapters.durable import DurableWriter, Sync, write_file

MODES = [Sync.FSYNC] + ([Sync.SYNCFS] if durable._SYNCFS is not None else [])


@pytest.fixture(params=MODES, ids=lambda m: m.value)
def writer(request: pytest.FixtureRequest) -> Iterator[DurableWriter]:
    w = DurableWriter(threads=4, sync=request.param)
    yield w
    w.close()


def test_auto_picks_syncfs_where_it_reports_errors() -> None:
    w = DurableWriter(threads=1)
    assert w.sync is (Sync.SYNCFS if durable._SYNCFS is not None else Sync.FSYNC)
    w.close()


def test_a_failed_syncfs_fails_that_directory_s_files_and_leaves_no_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if durable._SYNCFS is None:
        pytest.skip("no syncfs with error reporting here")
    w = DurableWriter(threads=1, sync=Sync.SYNCFS)
    monkeypatch.setattr(durable, "_SYNCFS", lambda fd: -1)  # the kernel's answer to a writeback error
    items = [(tmp_path / f"f{i}.xml", b"x") for i in range(3)]
    out = w.write_all(items)
    w.close()
    assert all(isinstance(r, OSError) for r in out)
    assert not list(tmp_path.iterdir())


def test_write_all_writes_every_file_in_order(writer: DurableWriter, tmp_path: Path) -> None:
    items = [(tmp_path / f"f{i}.xml", f"<r n='{i}'/>".encode()) for i in range(300)]  # > one chunk of 256
    out = writer.write_all(items)
    assert out == [t for t, _d in items]
    assert all(t.read_bytes() == d for t, d in items)
    assert not list(tmp_path.glob("*.tmp"))


def test_a_failing_file_does_not_stop_the_others(writer: DurableWriter, tmp_path: Path) -> None:
    items = [(tmp_path / "a.xml", b"a"), (tmp_path / "missing" / "b.xml", b"b"), (tmp_path / "c.xml", b"c")]
    out = writer.write_all(items)
    assert out[0] == tmp_path / "a.xml" and out[2] == tmp_path / "c.xml"
    assert isinstance(out[1], OSError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.xml", "c.xml"]


def test_one_file_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "x.xml"
    target.write_bytes(b"old")
    assert write_file(target, b"new") == target and target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["x.xml"]
    with pytest.raises(OSError):
        write_file(tmp_path / "nope" / "y.xml", b"y")


def test_links_planted_at_predictable_names_are_never_written_through(writer: DurableWriter, tmp_path: Path) -> None:
    """The temporary file has an unpredictable name and is created exclusively: a hard link planted at the
    old ``<name>.tmp`` (which O_NOFOLLOW does not stop) or a symlink is neither truncated nor written."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    items = [(out / f"r{i}.xml", b"receipt") for i in range(3)]
    os.link(victim, out / "r0.xml.tmp")
    os.symlink(victim, out / "r1.xml.tmp")
    assert writer.write_all(items) == [t for t, _d in items]
    assert write_file(out / "one.xml", b"x") == out / "one.xml"
    assert victim.read_bytes() == b"precious" and all(t.read_bytes() == b"receipt" for t, _d in items)
    assert sorted(p.name for p in out.iterdir()) == [
        "one.xml",
        "r0.xml",
        "r0.xml.tmp",
        "r1.xml",
        "r1.xml.tmp",
        "r2.xml",
    ]


def test_temporary_files_are_hidden_unique_and_take_the_mode(tmp_path: Path) -> None:
    fds = [durable.create_temp(tmp_path / "a.xml", 0o600) for _ in range(2)]
    for fd, _p in fds:
        os.close(fd)
    (p1, p2) = (Path(p) for _fd, p in fds)
    assert p1 != p2 and all(p.name.startswith(".a.xml.") and p.name.endswith(".tmp") for p in (p1, p2))
    assert stat.S_IMODE(p1.stat().st_mode) == 0o600
