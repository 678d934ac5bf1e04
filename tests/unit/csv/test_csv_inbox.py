"""The CSV adapter in its inbox (embedded bus, real files): one file's trouble never stops the others,
rows are measured exactly before a rejection, and an inbox file is read through its open descriptor."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog

from adapters.csv import Settings, build
from adapters.csv.importer import import_file
from adapters.files import open_inbox_file
from engine import ids
from engine.bus.embedded import EmbeddedBus
from engine.envelope import Envelope
from engine.errors import BusUnavailable
from tests.helpers import CSV_SPEC

FNRS = [v for v in (ids.synthetic_fnr(d, 1 + d % 12, 1960 + d, 100 + d) for d in range(1, 29)) if v]
SPEC = CSV_SPEC
HEADER = "id;fnr;kode;navn;dato\n"


@dataclass
class Runtime:
    bus: Any
    keys: Any = None


def settings(tmp_path: Path, **over: Any) -> Settings:
    s = Settings.model_validate(
        {"directory": str(tmp_path / "in"), "stable_seconds": 0, "poll_interval": 0.01, "spec": SPEC, **over}
    )
    s.ensure_dirs()
    return s


def row(i: int, name: str = "Test") -> str:
    return f"R{i};{FNRS[i]};A;{name};01.01.2026\n"


def envelopes(bus: EmbeddedBus) -> list[Envelope]:
    c = bus.consumer()
    try:
        return [d.envelope for d in c.fetch(1000, 0.5)]
    finally:
        c.close()


def test_short_rows_are_measured_exactly_before_a_rejection(tmp_path: Path) -> None:
    """max_line_bytes 1024: a 340-byte row passes (its rough bound, 8 x its bytes, is no reason to reject);
    a row that really takes more than 2 x max_line_bytes in the envelope is still rejected."""
    s = settings(tmp_path, max_line_bytes=1024)
    quotes = '"' + '""' * 500 + '"'  # 1002 bytes in the file, 2004 + quoting in the envelope: too long
    p = s.directory / "x.csv"
    p.write_text(HEADER + row(1, "Å" * 150 + "x" * 150) + row(2, quotes) + row(3), encoding="utf-8")
    bus = EmbeddedBus(tmp_path / "q.db")
    summary = import_file("t", s, Runtime(bus), p)
    assert (summary.rows, summary.accepted, summary.rejected) == (3, 2, 1)
    rejects = [str(e.rejection) for e in envelopes(bus) if e.rejection is not None]
    assert [r.split(":")[0] for r in rejects] == ["CSV_LINE_TOO_LONG"] and "row 2" in rejects[0]


def test_a_chunk_of_long_and_short_rows_is_the_same_csv(tmp_path: Path) -> None:
    """Rows measured (serialised once) and rows written in bulk make one chunk, in file order."""
    s = settings(tmp_path)
    long_name = 'lang "tekst"; ' * 1000  # 14 KB: measured
    quoted = '"' + long_name.replace('"', '""') + '"'
    text = "".join(row(i, quoted if i in (2, 4) else "Test") for i in range(1, 6))
    p = s.directory / "x.csv"
    p.write_text(HEADER + text, encoding="utf-8")
    bus = EmbeddedBus(tmp_path / "q.db")
    import_file("t", s, Runtime(bus), p)
    [chunk] = envelopes(bus)
    assert chunk.raw.split(b"\n", 1)[1].decode("utf-8") == text and chunk.attributes["rows"] == "5"


def test_a_file_whose_report_cannot_be_written_stays_and_the_others_go_on(tmp_path: Path) -> None:
    """A directory planted at x.csv's reject report: x.csv stays (logged once), the poll loop does not
    back off as if the inbox were unavailable, and the next file is imported."""
    s = settings(tmp_path)
    (s.directory / "a.csv").write_text(HEADER + row(1) + "R9;;A;x;01.01.2026\n", encoding="utf-8")  # one reject
    (s.directory / "a.csv.rejects.csv").mkdir()
    (s.directory / "b.csv").write_text(HEADER + row(2), encoding="utf-8")
    bus = EmbeddedBus(tmp_path / "q.db")
    a = build("t", s, Runtime(bus))
    with structlog.testing.capture_logs() as logs:
        waits = [a.inbox.poll_once(lambda paths: a._poll_one(paths[0], threading.Event()), 1) for _ in range(3)]
    assert waits == [s.poll_interval] * 3
    assert (s.directory / "a.csv").exists() and (s.archive / "b.csv").exists()
    events = [(e["event"], e.get("errno")) for e in logs if e["event"].startswith("inbox.")]
    assert events == [("inbox.file_unreadable", "EISDIR")]


def test_an_inbox_file_is_read_through_its_descriptor_not_its_name(tmp_path: Path) -> None:
    """Once opened, the file is read through a duplicate of its descriptor: a link swapped in under its
    name (or no /proc to reopen it by) changes nothing."""
    s = settings(tmp_path)
    secret = tmp_path / "secret.csv"
    secret.write_text(HEADER + row(7, "Hemmelig"), encoding="utf-8")
    p = s.directory / "x.csv"
    p.write_text(HEADER + row(1), encoding="utf-8")
    opened = open_inbox_file(p)
    os.unlink(p)
    os.symlink(secret, p)
    bus = EmbeddedBus(tmp_path / "q.db")
    with opened:
        import_file("t", s, Runtime(bus), p, opened=opened)
    [chunk] = envelopes(bus)
    assert b"R1;" in chunk.raw and b"Hemmelig" not in chunk.raw
    assert p.is_symlink() and secret.read_text(encoding="utf-8").endswith(row(7, "Hemmelig"))


def test_a_file_without_its_header_yet_is_given_the_grace(tmp_path: Path) -> None:
    """An empty export, or one whose header is cut short, may be half-written (its writer paused longer
    than stable_seconds): it stays until unchanged for incomplete_grace_seconds, then goes to error/."""
    s = settings(tmp_path, incomplete_grace_seconds=0.5)
    empty, half = s.directory / "empty.csv", s.directory / "half.csv"
    empty.write_bytes(b"")
    half.write_text(HEADER[:9], encoding="utf-8")  # "id;fnr;ko"
    a = build("t", s, Runtime(EmbeddedBus(tmp_path / "q.db")))

    def poll() -> None:
        a.inbox.poll_once(lambda paths: a._poll_one(paths[0], threading.Event()), 1)

    poll()
    poll()
    assert empty.exists() and half.exists() and not any(s.errors.iterdir())
    half.write_text(HEADER + row(1), encoding="utf-8")
    poll()
    assert (s.archive / "half.csv").exists()
    time.sleep(0.6)
    poll()
    assert (s.errors / "empty.csv.reason").read_text().startswith("CSV_EMPTY")


def test_archive_and_reject_report_on_another_filesystem(tmp_path: Path) -> None:
    """archive/ on another filesystem: the file and its reject report are copied there (no EXDEV)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem at /dev/shm")
    other = Path(tempfile.mkdtemp(dir=shm))
    try:
        s = settings(tmp_path, archive_dir=str(other / "archive"))
        p = s.directory / "x.csv"
        p.write_text(HEADER + row(1) + "R9;;A;x;01.01.2026\n", encoding="utf-8")
        summary = import_file("t", s, Runtime(EmbeddedBus(tmp_path / "q.db")), p)
        assert (summary.accepted, summary.rejected) == (1, 1)
        assert sorted(q.name for q in (other / "archive").iterdir()) == ["x.csv", "x.csv.reason", "x.csv.rejects.csv"]
        assert not any(q.name.startswith("x.csv") for q in s.directory.iterdir())
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_a_link_planted_at_the_reject_report_is_never_written_through(tmp_path: Path) -> None:
    """The report's name is in the inbox: a hard link (or symlink) planted there to another file is removed,
    the entry only, and the report written anew; the other file is neither truncated nor appended to."""
    s = settings(tmp_path)
    victim = tmp_path / "victim.db"
    victim.write_bytes(b"precious")
    for i, plant in enumerate((os.link, os.symlink)):
        p = s.directory / f"x{i}.csv"
        p.write_text(HEADER + row(1 + i) + "R9;;A;x;01.01.2026\n", encoding="utf-8")  # not the same export twice
        plant(victim, s.directory / f"x{i}.csv.rejects.csv")
        import_file("t", s, Runtime(EmbeddedBus(tmp_path / f"q{i}.db")), p)
        report = s.archive / f"x{i}.csv.rejects.csv"
        assert report.read_text(encoding="utf-8").startswith("row;column;reason\n") and not report.is_symlink()
    assert victim.read_bytes() == b"precious" and victim.stat().st_nlink == 1


class _DownBus:
    """A bus that is unavailable."""

    def publish(self, envs: list[Envelope]) -> None:
        raise BusUnavailable("down")


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"", "CSV_EMPTY"), (b"\n \n", "CSV_EMPTY"), (random.Random(19).randbytes(512), "MISSING_COLUMN")],
    ids=["empty", "blank", "random"],
)
def test_a_file_that_cannot_be_imported_is_published_rejected_then_goes_to_error(
    tmp_path: Path, content: bytes, code: str
) -> None:
    """Published once as one envelope with its bytes and the code (archived and dead-lettered by the
    worker), and only then moved to error/ with its .reason file."""
    s = settings(tmp_path, incomplete_grace_seconds=0)
    p = s.directory / "nothing.csv"
    p.write_bytes(content)
    bus = EmbeddedBus(tmp_path / "q.db")
    a = build("t", s, Runtime(bus))
    assert a._handle(p, threading.Event())
    [env] = envelopes(bus)
    assert env.raw == content and env.rejection is not None and env.rejection.code == code
    assert env.attributes == {"file": "nothing.csv", "scope": "file"} and env.content_type == "text/csv"
    assert not p.exists() and (s.errors / "nothing.csv").read_bytes() == content
    assert (s.errors / "nothing.csv.reason").read_text().startswith(code)


def test_a_file_that_cannot_be_imported_stays_while_the_bus_is_down(tmp_path: Path) -> None:
    s = settings(tmp_path, incomplete_grace_seconds=0, publish_attempts=1)
    p = s.directory / "empty.csv"
    p.write_bytes(b"")
    with structlog.testing.capture_logs() as logs:
        assert not build("t", s, Runtime(_DownBus()))._handle(p, threading.Event())
    assert p.exists() and not any(s.errors.iterdir())
    assert [e["code"] for e in logs if e["event"] == "csv.import_paused"] == ["BUS_UNAVAILABLE"]
    bus = EmbeddedBus(tmp_path / "q.db")
    assert build("t", s, Runtime(bus))._handle(p, threading.Event())  # the bus is back: published, then moved
    assert [e.rejection.code for e in envelopes(bus) if e.rejection] == ["CSV_EMPTY"]
    assert not p.exists() and (s.errors / "empty.csv.reason").read_text().startswith("CSV_EMPTY")
