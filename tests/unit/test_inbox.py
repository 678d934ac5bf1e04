"""The inbox mechanics every directory adapter shares (adapters.files, adapters.inbox), on the real filesystem.

Only regular files are read: a symlink (to /etc/passwd, to /proc/self/environ, dangling), a FIFO, a
socket or a directory matching the pattern is moved itself to error/ with an INBOX_NOT_REGULAR reason
and never opened; an entry swapped for a link between the listing and the open is refused too. The
poll loop backs off while the inbox cannot be listed and logs the change of state once. A file that
looks incomplete stays until it has been unchanged for the grace. Reason files never quote values and
are never written through a link planted at their name.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from adapters.files import (
    FileDropSettings,
    NotARegularFile,
    StableWatcher,
    ignored,
    lstat_signature,
    move_to_error,
    open_inbox_file,
    write_reason,
)
from adapters.inbox import Availability, Inbox, Unfinished

PASSWD = Path("/etc/passwd")


def _settings(tmp_path: Path, **extra: Any) -> FileDropSettings:
    s = FileDropSettings(directory=tmp_path / "in", stable_seconds=0, poll_interval=0.01, **extra)
    s.ensure_dirs()
    return s


def _plant(inbox: Path) -> dict[str, str]:
    """Every kind of entry that is not a regular file, by name -> the kind logged."""
    os.symlink(PASSWD, inbox / "passwd.xml")
    os.symlink("/proc/self/environ", inbox / "environ.xml")
    os.symlink(inbox / "nowhere", inbox / "dangling.xml")
    os.mkfifo(inbox / "fifo.xml")
    (inbox / "dir.xml").mkdir()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(inbox / "sock.xml"))
    return {
        "passwd.xml": "symbolic link",
        "environ.xml": "symbolic link",
        "dangling.xml": "symbolic link",
        "fifo.xml": "FIFO",
        "dir.xml": "directory",
        "sock.xml": "socket",
    }


@pytest.mark.parametrize(
    "name",
    [
        "a.tmp",
        "a.TMP",
        "a.part",
        "a.filepart",
        "a.partial",
        "a.xml~",
        "a.swp",
        "a.crdownload",
        ".a.xml",
        "~$a.xml",
        "a.xml.reason",
    ],
)
def test_temporary_names_are_ignored(name: str) -> None:
    assert ignored(name)


def test_ordinary_names_are_not_ignored() -> None:
    assert not any(ignored(n) for n in ("a.xml", "a.hl7", "EXPORT.CSV", "a~b.xml", "part.xml"))


def test_open_refuses_every_entry_that_is_not_a_regular_file(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    kinds = _plant(inbox)
    for name, kind in kinds.items():
        with pytest.raises(NotARegularFile) as info:
            open_inbox_file(inbox / name)  # never blocks on the FIFO, never reads a target
        assert str(info.value) == kind, name
    (inbox / "ok.xml").write_bytes(b"<x/>")
    with open_inbox_file(inbox / "ok.xml") as f, f.reader() as r:
        assert (f.size, r.read()) == (4, b"<x/>")


def test_the_listing_moves_the_entries_themselves_to_error_and_reads_nothing(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    kinds = _plant(s.directory)
    (s.directory / "good.xml").write_bytes(b"<ok/>")
    passwd = PASSWD.read_bytes()
    inbox, seen = Inbox(s, "t"), []
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            inbox.poll_once(lambda paths: seen.extend(p.name for p in paths))
    assert set(seen) == {"good.xml"}  # archive/ and error/ are the adapter's own: left alone
    assert sorted(p.name for p in s.directory.iterdir()) == ["archive", "error", "good.xml"]
    for name, kind in kinds.items():
        moved = s.errors / name
        assert os.path.lexists(moved), name
        assert stat.S_ISLNK(moved.lstat().st_mode) == (kind == "symbolic link")
        reason = (s.errors / (name + ".reason")).read_text()
        assert reason.startswith("INBOX_NOT_REGULAR: ") and kind in reason
    assert os.readlink(s.errors / "passwd.xml") == str(PASSWD) and PASSWD.read_bytes() == passwd
    refused = [e for e in logs if e["event"] == "inbox.not_regular"]
    assert sorted(e["kind"] for e in refused) == sorted(kinds.values())  # once each, over three polls
    assert not any(name in repr(logs) for name in kinds)  # file names only as opaque references


def test_an_entry_swapped_for_a_link_after_the_listing_is_refused(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    victim = s.directory / "x.xml"
    victim.write_bytes(b"<ok/>")
    inbox = Inbox(s, "t")

    def swap_then_open(paths: list[Path]) -> None:
        victim.unlink()
        os.symlink(PASSWD, victim)
        assert inbox.open(victim) is None

    inbox.poll_once(swap_then_open)
    assert os.readlink(s.errors / "x.xml") == str(PASSWD)
    assert (s.errors / "x.xml.reason").read_text().startswith("INBOX_NOT_REGULAR: a symbolic link")


def test_the_loop_backs_off_while_the_inbox_cannot_be_listed_and_logs_each_change_once(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    inbox, away = Inbox(s, "t"), tmp_path / "away"
    with structlog.testing.capture_logs() as logs:
        assert inbox.poll_once(lambda paths: None) == s.poll_interval
        s.directory.rename(away)
        s.directory.write_bytes(b"not a directory")
        waits = [inbox.poll_once(lambda paths: None) for _ in range(14)]
        s.directory.unlink()
        away.rename(s.directory)
        (s.directory / "late.xml").write_bytes(b"<ok/>")
        seen: list[Path] = []
        assert inbox.poll_once(seen.extend) == s.poll_interval
    assert waits == sorted(waits) and waits[0] == s.poll_interval and waits[-1] == 30.0  # capped
    assert [(e["event"], e.get("errno")) for e in logs] == [("inbox.unavailable", "ENOTDIR"), ("inbox.available", None)]
    assert [p.name for p in seen] == ["late.xml"]


def test_availability_logs_again_only_when_the_errno_changes() -> None:
    a = Availability("t", "outbox", base=1.0)
    with structlog.testing.capture_logs() as logs:
        for e in (PermissionError(13, "x"), PermissionError(13, "x"), OSError(24, "x"), OSError(24, "x")):
            a.failed(e, "write")
        a.ok()
        a.ok()
    assert [(e["event"], e.get("errno")) for e in logs] == [
        ("outbox.unavailable", "EACCES"),
        ("outbox.unavailable", "EMFILE"),
        ("outbox.available", None),
    ]
    assert a.delay() == 1.0 and not a.failing


def test_availability_waits_as_the_services_backoff_does() -> None:
    a = Availability("t", "archive", base=0.5, cap=3.0)
    waits = [a.failed(OSError(28, "x"), "move") for _ in range(5)]
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0] and a.failing
    a.ok()
    assert a.delay() == 0.5 and a.failed(OSError(28, "x"), "move") == 0.5  # starts over once it worked


def test_a_published_file_is_remembered_by_what_was_read(tmp_path: Path) -> None:
    """Unfinished: unchanged and not due -> skipped; due -> retried; changed -> read afresh (forgotten);
    gone from the listing -> forgotten; busy (being finished elsewhere) -> skipped, never pruned."""
    now = [0.0]
    memo: Unfinished[str] = Unfinished(clock=lambda: now[0])
    a, b, c = (tmp_path / n for n in ("a.xml", "b.xml", "c.xml"))
    for p in (a, b, c):
        p.write_bytes(b"<x/>")
    for p in (a, b, c):
        memo.remember(p, lstat_signature(p) or (0, 0, 0), p.name, retry_in=5.0)
    assert memo.split([a, b, c, tmp_path / "new.xml"]) == ([], [tmp_path / "new.xml"])
    now[0] = 6.0
    b.write_bytes(b"<x>changed</x>")
    c.unlink()
    memo.prune({a, b})
    assert memo.split([a, b]) == (["a.xml"], [b])
    assert a in memo and b not in memo and c not in memo
    memo.remember(a, lstat_signature(a) or (0, 0, 0), "a.xml", busy=True)
    a.unlink()
    memo.prune(set())
    assert memo.split([]) == ([], []) and a in memo  # the thread finishing it decides
    memo.release([a])
    memo.prune(set())
    assert a not in memo


def test_the_listing_prunes_the_memory_of_published_files(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    memo: Unfinished[str] = Unfinished()
    inbox = Inbox(s, "t", unfinished=memo)
    kept, gone = s.directory / "kept.xml", s.directory / "gone.xml"
    for p in (kept, gone):
        p.write_bytes(b"<x/>")
        memo.remember(p, lstat_signature(p) or (0, 0, 0), p.name, retry_in=60)
    gone.unlink()
    inbox.poll_once(lambda paths: None)
    assert kept in memo and gone not in memo


def test_a_file_that_looks_incomplete_waits_out_the_grace_unread(tmp_path: Path) -> None:
    s = _settings(tmp_path, incomplete_grace_seconds=0.6)
    p = s.directory / "cut.xml"
    p.write_bytes(b"<a>")
    inbox, offered, verdicts = Inbox(s, "t"), [], []

    def handle(paths: list[Path]) -> None:
        offered.extend(paths)
        f = inbox.open(paths[0])
        assert f is not None
        with f:
            verdicts.append(inbox.still_arriving(f, "KITH_NOT_WELL_FORMED"))

    with structlog.testing.capture_logs() as logs:
        inbox.poll_once(handle)
        inbox.poll_once(handle)  # judged incomplete, unchanged: not offered again yet
        time.sleep(0.7)
        inbox.poll_once(handle)
    assert verdicts == [True, False] and len(offered) == 2
    assert [e["event"] for e in logs] == ["inbox.incomplete_waiting"]


def test_a_file_that_changed_since_it_was_opened_is_never_judged(tmp_path: Path) -> None:
    s = _settings(tmp_path, incomplete_grace_seconds=0)
    p = s.directory / "growing.xml"
    p.write_bytes(b"<a>")
    inbox = Inbox(s, "t")
    f = inbox.open(p)
    assert f is not None
    with f, open(p, "ab") as w:
        w.write(b"</a>")
        w.flush()
        assert inbox.still_arriving(f, "KITH_NOT_WELL_FORMED")  # grace 0, but it grew after the open


def test_a_file_that_cannot_be_opened_for_a_reason_of_its_own_stays_and_is_logged_once(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    p = s.directory / "f.xml"
    p.write_bytes(b"x")
    inbox = Inbox(s, "t")
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            inbox.unreadable(p, PermissionError(13, "denied"))
    assert [(e["event"], e["errno"]) for e in logs] == [("inbox.file_unreadable", "EACCES")]
    assert p.exists()


def test_reasons_never_quote_values_nor_follow_a_planted_link(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    bad = s.directory / "bad.xml"
    bad.write_bytes(b"x")
    os.symlink(victim, s.errors / "bad.xml.reason")
    os.symlink(victim, s.errors / "bad.xml.reason.tmp")
    target = move_to_error(bad, s, "KITH_XSD_INVALID: line 3: value 'O''Hara 090454 07176' is not valid\nline 2")
    reason = (s.errors / "bad.xml.reason").read_text()
    assert reason == "KITH_XSD_INVALID: line 3: value '…' is not valid\nline 2\n"
    assert victim.read_bytes() == b"precious" and not (s.errors / "bad.xml.reason").is_symlink()
    os.symlink(victim, target.with_name(target.name + ".x.reason"))
    write_reason(target.with_name(target.name + ".x"), "090454 07176")
    assert victim.read_bytes() == b"precious"


def test_a_poll_thread_survives_a_fifo_and_stops_on_request(tmp_path: Path) -> None:
    """The open of a FIFO never blocks the loop (no writer ever comes)."""
    s = _settings(tmp_path)
    os.mkfifo(s.directory / "a.xml")
    (s.directory / "b.xml").write_bytes(b"<ok/>")
    seen: list[str] = []
    stop = threading.Event()
    t = threading.Thread(target=Inbox(s, "t").poll, args=(stop, lambda ps: seen.extend(p.name for p in ps)))
    t.start()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join(5)
    assert not t.is_alive() and seen[:1] == ["b.xml"]
    assert stat.S_ISFIFO((s.errors / "a.xml").lstat().st_mode)


def test_stable_watcher_offers_only_regular_files(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    _plant(s.directory)
    (s.directory / "z.xml").write_bytes(b"z")
    w = StableWatcher(s)
    assert [p.name for p in w.candidates()] == ["z.xml"]
    assert [p.name for p in w.stable_files()] == ["z.xml"]
    assert sorted(k for _, k in w.irregular) == sorted(_plant_kinds())


def _plant_kinds() -> list[str]:
    return ["symbolic link", "symbolic link", "symbolic link", "FIFO", "directory", "socket"]
