"""max_line_bytes: an over-long record is reported with its row and line, never read whole; reading resyncs."""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.csv import Settings
from adapters.csv.importer import import_file
from adapters.csv.reader import LineTooLong, open_csv
from engine import ids
from engine.bus.embedded import EmbeddedBus
from engine.errors import ParseError
from tests.helpers import CSV_SPEC

FNRS = [v for v in (ids.synthetic_fnr(d, 1 + d % 12, 1960 + d, 100 + d) for d in range(1, 29)) if v]
LIMIT = 64 * 1024


@dataclass
class Runtime:
    bus: Any
    keys: Any = None


def rows_of(
    p: Path, limit: int = LIMIT, encoding: str = "utf-8"
) -> tuple[list[tuple[int, list[str]]], list[tuple[int, int]]]:
    seen: list[tuple[int, int]] = []
    with open_csv(p, encoding, ";", limit) as f:
        rows = list(f.rows(lambda n, e: seen.append((n, e.line))))
    return rows, seen


def test_long_line_reported_and_the_next_rows_read(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_text("a;b\n1;x\n2;" + "y" * (3 * 1024 * 1024) + "\n3;z\n", encoding="utf-8")
    tracemalloc.start()
    try:
        rows, seen = rows_of(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == [(1, ["1", "x"]), (3, ["3", "z"])] and seen == [(2, 3)]
    assert peak < 1024 * 1024  # pieces of the 3 MiB line, never all of it


def test_quoted_record_over_several_lines_is_bounded_too(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    body = "\n".join(["line " * 2000] * 40)  # 400 KB inside one quoted field, lines of 10 KB
    p.write_text(f'a;b\n1;x\n2;"{body}"\n3;z\n', encoding="utf-8")
    rows, seen = rows_of(p)
    assert seen[0] == (2, 3) and rows[0] == (1, ["1", "x"])
    assert rows[-1][1] == ["3", "z"]  # read on after the record's tail


def test_utf8_counts_bytes_not_characters(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_text("a;b\n1;" + "ø" * (LIMIT // 2 + 10) + "\n2;ok\n", encoding="utf-8")  # fewer chars than bytes
    rows, seen = rows_of(p)
    assert seen == [(1, 2)] and rows == [(2, ["2", "ok"])]


@pytest.mark.parametrize("encoding", ["iso-8859-1", "latin-1", "cp1252"])
def test_single_byte_files_count_one_byte_per_letter(tmp_path: Path, encoding: str) -> None:
    """Every spelling of a single-byte encoding is measured in its own bytes, not as UTF-8 (where "ø" is two)."""
    p = tmp_path / "f.csv"
    p.write_bytes(("a;b\n1;" + "ø" * (LIMIT - 16) + "\n2;" + "ø" * (LIMIT + 1) + "\n").encode(encoding))
    rows, seen = rows_of(p, encoding=encoding)
    assert rows == [(1, ["1", "ø" * (LIMIT - 16)])] and seen == [(2, 3)]


def test_without_a_handler_it_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_text("a;b\n1;" + "y" * (LIMIT + 1) + "\n", encoding="utf-8")
    with open_csv(p, "utf-8", ";", LIMIT) as f, pytest.raises(ParseError) as e:
        list(f.rows())
    assert e.value.code == LineTooLong.code and "line 2" in str(e.value)


def test_header_too_long(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_text("a;" + "b" * (LIMIT + 1) + "\n1;2\n", encoding="utf-8")
    with pytest.raises(ParseError) as e:
        open_csv(p, "utf-8", ";", LIMIT)
    assert e.value.code == "CSV_LINE_TOO_LONG"


def test_import_rejects_the_long_record_into_the_report(tmp_path: Path) -> None:
    spec = CSV_SPEC
    s = Settings.model_validate(
        {"directory": str(tmp_path / "in"), "stable_seconds": 0, "spec": spec, "max_line_bytes": LIMIT}
    )
    s.ensure_dirs()
    p = s.directory / "x.csv"
    p.write_text(
        f"id;fnr;kode;navn;dato\n1;{FNRS[0]};A;Åse;01.01.2026\n"
        f"2;{FNRS[1]};A;{'Ø' * LIMIT};01.01.2026\n3;{FNRS[2]};A;Kåre;01.01.2026\n",
        encoding="utf-8",
    )
    bus = EmbeddedBus(tmp_path / "q.db")
    summary = import_file("t", s, Runtime(bus), p)
    assert (summary.rows, summary.accepted, summary.rejected) == (3, 2, 1)
    report = (s.archive / "x.csv.rejects.csv").read_text(encoding="utf-8")
    assert report.splitlines()[1:] == ["2;line 3;CSV_LINE_TOO_LONG"]
    c = bus.consumer()
    envs = [d.envelope for d in c.fetch(100, 0.5)]
    c.close()
    [reject] = [e for e in envs if e.rejection is not None]
    assert str(reject.rejection).startswith("CSV_LINE_TOO_LONG: row 2 (line 3)")
    assert "Ø" not in reject.raw.decode() and FNRS[1] not in reject.raw.decode()  # the header only
