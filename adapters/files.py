"""Shared mechanics of directory-polling adapters (HL7 batches, KITH XML, CSV exports).

* Only regular files of the inbox are read. The listing looks at each entry with ``lstat`` and never
  follows a link; anything else (a symlink, dangling or not, a FIFO, a socket, a device, a directory
  matching the pattern) is moved itself, never its target, to ``error/`` with a ``.reason``
  (``INBOX_NOT_REGULAR``) and never read (:class:`adapters.inbox.Inbox`). A file is opened with
  :func:`open_inbox_file` (no-follow, and the opened descriptor must be a regular file), so an entry
  swapped between the listing and the open is caught too.
* Stable-file detection: a file is read only when its size and mtime have not changed for
  ``stable_seconds`` across polls. Temporary names of write-then-rename are ignored
  (:func:`ignored`: ``*.tmp``, ``*.part``, ``*.filepart``, ``*.partial``, ``*.crdownload``, ``*.swp``,
  ``*~``, names starting with ``.`` or ``~$``, ...).
* After every message of a file is confirmed on the bus, the file moves to ``archive/``; a file
  that cannot be handled at all moves to ``error/`` with a ``<name>.reason`` file beside it (its text
  through :func:`engine.redact.safe_reason`). Names in ``archive/``/``error/`` are made unique, so a
  second drop of the same name is kept too. Both moves rename the entry itself (never a link's target),
  and copy a regular file when ``archive/`` or ``error/`` is on another filesystem.
* What a file looked like is its :data:`Signature` (inode, size, mtime), from ``lstat`` or the opened
  descriptor (:func:`signature`): the same name with another signature is another file, or the same
  file still being written.
* The poll loop, its backoff while the inbox is unavailable, the grace given to a file that looks
  incomplete and the memory of files published but not finished live in :mod:`adapters.inbox`.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Self

from pydantic import BaseModel, ConfigDict, Field

from adapters.durable import write_file
from engine.errors import ConfigError
from engine.redact import safe_reason

#: temporary names of write-then-rename and of common transfer tools: never picked up
IGNORED_SUFFIXES = (
    ".tmp",
    ".temp",
    ".part",
    ".partial",
    ".filepart",
    ".crdownload",
    ".download",
    ".swp",
    ".swx",
    "~",
    ".reason",
)
IGNORED_PREFIXES = (".", "~$")


#: (inode, size, mtime in ns) of a file: what tells one version of a name from another
Signature = tuple[int, int, int]


def signature(st: os.stat_result) -> Signature:
    """The :data:`Signature` of a ``stat`` / ``lstat`` / ``fstat`` result."""
    return st.st_ino, st.st_size, st.st_mtime_ns


def lstat_signature(path: Path) -> Signature | None:
    """The :data:`Signature` of the entry ``path`` itself (a link is not followed); None when it is gone."""
    try:
        return signature(os.lstat(path))
    except FileNotFoundError:
        return None


def settled(st: os.stat_result, seconds: float) -> bool:
    """Nothing changed the file for at least ``seconds``: not its data (mtime) nor its inode (ctime, which
    also moves when the mtime is set back)."""
    return time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 >= seconds


def ignored(name: str) -> bool:
    """True for a temporary, hidden or bookkeeping name (compared case-insensitively)."""
    return name.startswith(IGNORED_PREFIXES) or name.casefold().endswith(IGNORED_SUFFIXES)


class FileDropSettings(BaseModel):
    """Settings every directory-polling adapter shares."""

    model_config = ConfigDict(extra="forbid")

    directory: Path
    pattern: str = "*"
    archive_dir: Path | None = None  # default: <directory>/archive
    error_dir: Path | None = None  # default: <directory>/error
    poll_interval: float = Field(default=1.0, gt=0)
    stable_seconds: float = Field(default=2.0, ge=0)
    #: a file that looks incomplete (cut XML, no message) is rejected only once it has been unchanged
    #: this long; until then it stays in the inbox (its writer may only have paused)
    incomplete_grace_seconds: float = Field(default=60.0, ge=0)
    max_file_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    source_system: str | None = None

    @property
    def archive(self) -> Path:
        return self.archive_dir or self.directory / "archive"

    @property
    def errors(self) -> Path:
        return self.error_dir or self.directory / "error"

    def dirs(self) -> dict[str, Path]:
        """Every directory the adapter reads or writes, by its setting: the inbox and the adapter's own."""
        return {"directory": self.directory, "archive_dir": self.archive, "error_dir": self.errors}

    def own_dirs(self) -> list[Path]:
        """Directories of the adapter itself, which may lie inside the inbox and are never picked up."""
        return [d for setting, d in self.dirs().items() if setting != "directory"]

    def ensure_dirs(self) -> None:
        """Create the inbox, ``archive/`` and ``error/`` (when the adapter starts, never in a check)."""
        for d in (self.directory, self.archive, self.errors):
            d.mkdir(parents=True, exist_ok=True)

    def check_dirs(self, adapter: str) -> None:
        """Raise :class:`engine.errors.ConfigError` when the inbox is missing, or a directory of :meth:`dirs`
        is not a writable directory, or a missing one could not be created; create nothing."""
        for setting, d in self.dirs().items():
            problem = dir_problem(d, must_exist=setting == "directory")
            if problem is not None:
                raise ConfigError(f"adapter {adapter!r}: {setting} {d} {problem}")


def dir_problem(path: Path, *, must_exist: bool) -> str | None:
    """Why ``path`` cannot serve as a directory the engine writes to (None: it can), without writing: it is
    missing (when it ``must_exist``), not a directory, not writable, or missing below a directory where it
    cannot be created."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        if must_exist:
            return "does not exist"
        parent = _existing_parent(path)
        if parent is None or not parent.is_dir():
            return "cannot be created (no directory above it)"
        return None if os.access(parent, os.W_OK | os.X_OK) else "cannot be created (its parent is not writable)"
    except OSError as exc:
        return f"cannot be looked at ({errno.errorcode.get(exc.errno or 0, type(exc).__name__)})"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    return None if os.access(path, os.R_OK | os.W_OK | os.X_OK) else "is not readable and writable"


def _existing_parent(path: Path) -> Path | None:
    for parent in Path(os.path.abspath(path)).parents:
        if os.path.lexists(parent):
            return parent
    return None


def entry_kind(mode: int) -> str:
    """What a directory entry is, from its ``lstat`` mode (for reasons and logs)."""
    for test, kind in (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "device"),
        (stat.S_ISBLK, "device"),
    ):
        if test(mode):
            return kind
    return "special file"


@dataclass
class StableWatcher:
    """Lists the inbox with ``lstat`` and remembers what each regular file looked like at the previous poll.

    :meth:`stable_files` returns the regular files that are ready; the entries that are not regular
    files are left in :attr:`irregular` for the caller to move away (they are never offered as files).
    """

    settings: FileDropSettings
    clock: Callable[[], float] = time.monotonic
    _seen: dict[Path, tuple[int, int, float]] = field(default_factory=dict)
    stats: dict[Path, os.stat_result] = field(default_factory=dict)  # lstat of each file, last listing
    irregular: list[tuple[Path, str]] = field(default_factory=list)  # (entry, kind), last listing

    def matches(self, name: str) -> bool:
        """A name the adapter picks up: it matches the pattern and is not a temporary name."""
        return not ignored(name) and fnmatch.fnmatchcase(name, self.settings.pattern)

    def entries(self) -> Iterator[tuple[Path, os.stat_result]]:
        """``(path, lstat)`` of every matching entry, by name; raises OSError when the inbox cannot be listed."""
        own = {os.path.abspath(p) for p in self.settings.own_dirs()}
        with os.scandir(self.settings.directory) as it:
            names = sorted(e.name for e in it if self.matches(e.name))
        for name in names:
            p = self.settings.directory / name
            if os.path.abspath(p) in own:
                continue
            try:
                yield p, os.lstat(p)
            except FileNotFoundError:
                continue

    def candidates(self) -> Iterator[Path]:
        """The regular files that match, by name (what :meth:`stable_files` looks at)."""
        return (p for p, st in self.entries() if stat.S_ISREG(st.st_mode))

    def stable_files(self) -> list[Path]:
        """Regular files unchanged (size, mtime) for at least ``stable_seconds``, by name."""
        now, wall = self.clock(), time.time()
        ready: list[Path] = []
        self.stats, self.irregular = {}, []
        for p, st in self.entries():
            if not stat.S_ISREG(st.st_mode):
                self.irregular.append((p, entry_kind(st.st_mode)))
                continue
            self.stats[p] = st
            if self._stable(p, st, now, wall):
                ready.append(p)
        for gone in set(self._seen) - set(self.stats):
            del self._seen[gone]
        return ready

    def _stable(self, p: Path, st: os.stat_result, now: float, wall: float) -> bool:
        sig = (st.st_size, st.st_mtime_ns)
        prev = self._seen.get(p)
        if prev is None or prev[:2] != sig:
            self._seen[p] = prev = (sig[0], sig[1], now)
            if self.settings.stable_seconds > 0:
                return False
        age_wall = wall - st.st_mtime_ns / 1e9
        return now - prev[2] >= self.settings.stable_seconds and age_wall >= self.settings.stable_seconds

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)


def _unique_target(directory: Path, name: str) -> Path:
    target = directory / name
    if not os.path.lexists(target):
        return target
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return directory / f"{name}.{stamp}"


def move_to_archive(path: Path, settings: FileDropSettings) -> Path:
    """Move ``path`` (the entry itself) to archive/, under a name not taken yet."""
    settings.archive.mkdir(parents=True, exist_ok=True)
    target = _unique_target(settings.archive, path.name)
    move_entry(path, target)
    return target


def move_to_error(path: Path, settings: FileDropSettings, reason: str) -> Path:
    """Move ``path`` to error/ and write ``<name>.reason`` beside it (codes and positions only).

    The entry itself is moved, never a link's target; a move that fails leaves no ``.reason`` behind."""
    settings.errors.mkdir(parents=True, exist_ok=True)
    target = _unique_target(settings.errors, path.name)
    reason_file = target.with_name(target.name + ".reason")
    _write_new(reason_file, _reason_text(reason))
    try:
        move_entry(path, target)
    except BaseException:
        reason_file.unlink(missing_ok=True)
        raise
    return target


def move_entry(path: Path, target: Path) -> None:
    """Move the entry ``path`` itself to ``target``: a rename (which never follows a link); across
    filesystems a symlink is recreated and a regular file copied, and any other kind of entry stays where
    it is (``OSError``)."""
    try:
        os.rename(path, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(path), target)
        os.unlink(path)
    elif stat.S_ISREG(mode):
        shutil.move(str(path), str(target))
    else:
        raise OSError(errno.EXDEV, "cannot move a special file to another filesystem")


def write_reason(target: Path, reason: str) -> None:
    """Write a ``.reason`` file beside an archived file (parts of it were rejected)."""
    _write_new(target.with_name(target.name + ".reason"), _reason_text(reason))


def _write_new(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file of an unpredictable name, created exclusively
    (:func:`adapters.durable.create_temp`: a link planted at a known name is never written through)."""
    write_file(path, text.encode("utf-8"), sync=False)


def _reason_text(reason: str) -> str:
    """Each line of a reason made fit for ops (:func:`engine.redact.safe_reason`)."""
    lines = (safe_reason(line) for line in reason.splitlines())
    return "\n".join(line for line in lines if line) + "\n"


class NotARegularFile(Exception):
    """The inbox entry is not a regular file of the inbox (a symlink, a device, a FIFO, a directory)."""

    code = "INBOX_NOT_REGULAR"


@dataclass
class InboxFile:
    """A file of the inbox opened safely (see :func:`open_inbox_file`), with what it looked like when opened.

    Use it as a context manager, or hand the descriptor over with :meth:`reader`."""

    path: Path
    fd: int
    size: int
    mtime_ns: int
    inode: int
    ctime_ns: int = 0
    _owned: bool = field(default=True, repr=False)  # the descriptor is still ours to close

    @property
    def signature(self) -> Signature:
        """(inode, size, mtime) when opened: the same name with another signature is another file."""
        return self.inode, self.size, self.mtime_ns

    def reader(self) -> BinaryIO:
        """A buffered binary reader on the open descriptor (it closes the descriptor when closed)."""
        self._owned = False
        return os.fdopen(self.fd, "rb", closefd=True)

    def reopen(self) -> BinaryIO:
        """A reader of this very file from its start, on a duplicate of the open descriptor (never the
        inbox name again), for code that reads the file more than once; close it when done. Readers
        share the descriptor's offset: use one at a time."""
        if not self._owned:
            raise ValueError("the descriptor was handed over or closed")
        fd = os.dup(self.fd)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            return os.fdopen(fd, "rb", closefd=True)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        if self._owned:
            self._owned = False
            os.close(self.fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def changed(self) -> bool:
        """True when the name now holds something else than what was opened, or it grew or was touched
        since (a writer was still at work): such a file is looked at again, never rejected half-read."""
        return lstat_signature(self.path) != self.signature

    def settled(self, seconds: float) -> bool:
        """True when the file is still what was opened and nothing changed it for at least ``seconds``
        (:func:`settled`)."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return False
        return signature(st) == self.signature and settled(st, seconds)


def open_inbox_file(path: Path) -> InboxFile:
    """Open ``path`` for reading without following a symlink, and only if it is a regular file.

    The open itself refuses a symlink as the last component (``O_NOFOLLOW``) and never blocks on a
    FIFO (``O_NONBLOCK``); ``fstat`` of the opened descriptor then decides, so nothing is read from a
    symlink's target, ``/proc`` or a device. Raises :class:`NotARegularFile` or ``OSError``."""
    flags = (
        os.O_RDONLY
        | getattr(os, "O_NOFOLLOW", 0)
        | getattr(os, "O_NONBLOCK", 0)
        | getattr(os, "O_CLOEXEC", 0)
        | getattr(os, "O_NOCTTY", 0)
    )
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotARegularFile("symbolic link") from None
        if exc.errno in (errno.ENXIO, errno.ENODEV):  # a socket, or a device without its driver
            raise NotARegularFile(entry_kind(os.lstat(path).st_mode)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(entry_kind(st.st_mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return InboxFile(path, fd, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
