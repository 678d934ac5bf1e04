"""Shared mechanics of directory-polling adapters (HL7 batches, KITH XML, CSV exports).

* Stable-file detection: a file is read only when its size and mtime have not changed for
  ``stable_seconds`` across polls (never a file still being written); dot-files and
  ``*.tmp``/``*.part``/``*.filepart`` are ignored.
* After every message of a file is confirmed on the bus, the file moves to ``archive/``; a file
  that cannot be handled at all moves to ``error/`` with a ``<name>.reason`` file beside it.
  Names in ``archive/``/``error/`` are made unique, so a second drop of the same name is kept too.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from pydantic import BaseModel, ConfigDict, Field

IGNORED_SUFFIXES = (".tmp", ".part", ".filepart", ".partial", ".reason")


class FileDropSettings(BaseModel):
    """Settings every directory-polling adapter shares."""

    model_config = ConfigDict(extra="forbid")

    directory: Path
    pattern: str = "*"
    archive_dir: Path | None = None  # default: <directory>/archive
    error_dir: Path | None = None  # default: <directory>/error
    poll_interval: float = Field(default=1.0, gt=0)
    stable_seconds: float = Field(default=2.0, ge=0)
    max_file_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    source_system: str | None = None

    @property
    def archive(self) -> Path:
        return self.archive_dir or self.directory / "archive"

    @property
    def errors(self) -> Path:
        return self.error_dir or self.directory / "error"

    def ensure_dirs(self) -> None:
        for d in (self.directory, self.archive, self.errors):
            d.mkdir(parents=True, exist_ok=True)


@dataclass
class StableWatcher:
    """Remembers what each candidate file looked like at the previous poll."""

    settings: FileDropSettings
    clock: Callable[[], float] = time.monotonic
    _seen: dict[Path, tuple[int, int, float]] = field(default_factory=dict)

    def candidates(self) -> Iterator[Path]:
        d = self.settings.directory
        for p in sorted(d.glob(self.settings.pattern)):
            if not p.is_file() or p.name.startswith(".") or p.name.endswith(IGNORED_SUFFIXES):
                continue
            yield p

    def stable_files(self) -> list[Path]:
        """Files unchanged (size, mtime) for at least ``stable_seconds``, oldest first."""
        now = self.clock()
        ready: list[Path] = []
        present: set[Path] = set()
        for p in self.candidates():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            present.add(p)
            sig = (st.st_size, st.st_mtime_ns)
            prev = self._seen.get(p)
            if prev is None or prev[:2] != sig:
                self._seen[p] = (sig[0], sig[1], now)
                if self.settings.stable_seconds > 0:
                    continue
                prev = self._seen[p]
            age_wall = time.time() - st.st_mtime_ns / 1e9
            if now - prev[2] >= self.settings.stable_seconds and age_wall >= self.settings.stable_seconds:
                ready.append(p)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return ready

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)


def _unique_target(directory: Path, name: str) -> Path:
    target = directory / name
    if not target.exists():
        return target
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    return directory / f"{name}.{stamp}"


def move_to_archive(path: Path, settings: FileDropSettings) -> Path:
    settings.archive.mkdir(parents=True, exist_ok=True)
    target = _unique_target(settings.archive, path.name)
    os.replace(path, target)
    return target


def move_to_error(path: Path, settings: FileDropSettings, reason: str) -> Path:
    """Move ``path`` to error/ and write ``<name>.reason`` beside it (codes and positions only)."""
    settings.errors.mkdir(parents=True, exist_ok=True)
    target = _unique_target(settings.errors, path.name)
    reason_file = target.with_name(target.name + ".reason")
    tmp = reason_file.with_name(reason_file.name + ".tmp")
    tmp.write_text(reason.rstrip() + "\n", encoding="utf-8")
    os.replace(tmp, reason_file)
    shutil.move(str(path), str(target))
    return target


def write_reason(target: Path, reason: str) -> None:
    """Write a ``.reason`` file beside an archived file (parts of it were rejected)."""
    p = target.with_name(target.name + ".reason")
    p.write_text(reason.rstrip() + "\n", encoding="utf-8")


def poll_batches(stop: threading.Event, settings: FileDropSettings, handle: Callable[[list[Path]], None],
                 max_batch: int = 200, watcher: StableWatcher | None = None) -> None:
    """Call ``handle(paths)`` with up to ``max_batch`` stable files at a time until ``stop`` is set
    (one publish and one confirm per batch instead of per file)."""
    settings.ensure_dirs()
    w = watcher or StableWatcher(settings)
    while not stop.is_set():
        ready = w.stable_files()
        for i in range(0, len(ready), max_batch):
            if stop.is_set():
                return
            chunk = ready[i:i + max_batch]
            handle(chunk)
            for p in chunk:
                w.forget(p)
        stop.wait(settings.poll_interval)


def poll_loop(stop: threading.Event, settings: FileDropSettings, handle: Callable[[Path], None],
              watcher: StableWatcher | None = None) -> None:
    """Call ``handle(path)`` for each stable file until ``stop`` is set."""
    poll_batches(stop, settings, lambda paths: handle(paths[0]), max_batch=1, watcher=watcher)


class NotARegularFile(Exception):
    """The inbox entry is not a regular file of the inbox (a symlink, a device, a FIFO, a directory)."""

    code = "INBOX_NOT_REGULAR"


@dataclass
class InboxFile:
    """A file of the inbox opened safely (see :func:`open_inbox_file`), with what it looked like when opened."""

    path: Path
    fd: int
    size: int
    mtime_ns: int
    inode: int

    def reader(self) -> BinaryIO:
        """A buffered binary reader on the open descriptor (it closes the descriptor when closed)."""
        return os.fdopen(self.fd, "rb", closefd=True)

    def changed(self) -> bool:
        """True when the name now holds something else than what was opened, or it grew or was touched
        since (a writer was still at work): such a file is looked at again, never rejected half-read."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_ino, st.st_size, st.st_mtime_ns) != (self.inode, self.size, self.mtime_ns)


def open_inbox_file(path: Path) -> InboxFile:
    """Open ``path`` for reading without following a symlink, and only if it is a regular file.

    The open itself refuses a symlink as the last component (``O_NOFOLLOW``) and never blocks on a
    FIFO (``O_NONBLOCK``); ``fstat`` of the opened descriptor then decides, so nothing is read from a
    symlink's target, ``/proc`` or a device. Raises :class:`NotARegularFile` or ``OSError``."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotARegularFile("a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile("not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return InboxFile(path, fd, st.st_size, st.st_mtime_ns, st.st_ino)
