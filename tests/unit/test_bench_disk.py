"""The benchmark's file-create probe (bench.disk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import disk


def test_probe_creates_the_files_and_keeps_them(tmp_path: Path) -> None:
    res = disk.probe(tmp_path / "p", files=20, size=100)
    made = sorted((tmp_path / "p").iterdir())
    assert len(made) == 20 and all(f.stat().st_size == 100 for f in made)
    assert res.files == 20 and res.cpu_s >= 0 and res.wall_s > 0
    assert res.note().startswith("creating a file of 100 bytes here cost ") and "µs CPU" in res.note()


def test_probe_never_overwrites(tmp_path: Path) -> None:
    disk.probe(tmp_path, files=2)
    with pytest.raises(FileExistsError):
        disk.probe(tmp_path, files=2)


def test_per_file_figure() -> None:
    assert disk.DiskProbe(files=200, cpu_s=0.1, wall_s=0.2).cpu_us == pytest.approx(500.0)
    assert disk.DiskProbe(files=0, cpu_s=0.0, wall_s=0.0).cpu_us == 0.0
