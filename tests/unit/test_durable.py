"""adapters.durable: many files written durably at once; a failing one does not stop the others."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.durable import DurableWriter, write_file


@pytest.fixture
def writer() -> Iterator[DurableWriter]:
    w = DurableWriter(threads=4)
    yield w
    w.close()


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
