"""The poll loop of a directory-polling adapter, and what keeps it alive.

* **Only regular files.** Entries of the inbox that are not regular files (see
  :class:`adapters.files.StableWatcher`) are moved, the entry itself, to ``error/`` with a ``.reason``
  (``INBOX_NOT_REGULAR``), logged once (``inbox.not_regular``) and never read. :meth:`Inbox.open` does
  the same for an entry swapped between the listing and the open.
* **An inbox that fails is waited for.** An ``OSError`` while listing or creating directories, an
  ``open`` that fails for the whole process (descriptors or memory exhausted: :data:`PROCESS_WIDE`,
  ``EMFILE``, ``ENFILE``, ``ENOMEM``), or such an error an adapter lets through while handling a file,
  makes the loop back off exponentially (:class:`engine.supervise.Backoff`, from ``poll_interval``,
  capped at :data:`BACKOFF_CAP`) and try again; it logs ``inbox.unavailable`` with the errno name when
  that starts (or the errno changes) and ``inbox.available`` when a poll works again, never a line per
  poll. A file that cannot be opened or read for a reason of its own (``EACCES`` on that file) stays
  where it is, logged once (``inbox.file_unreadable``), and its neighbours go on.
* **A file published but not finished is not published again.** When the broker confirmed a file's
  envelopes but its receipt or its move to ``archive/``/``error/`` fails, the adapter catches that
  itself and remembers the file (:class:`Unfinished`, by its :data:`adapters.files.Signature`): while
  it is unchanged only what is left is tried again, after a backoff (:class:`Availability`:
  ``archive.unavailable`` / ``outbox.unavailable`` once, ``*.available`` when it works again). A
  remembered file that changed is read afresh; one that is gone from the listing is forgotten.
* **A file that looks incomplete is given time.** Before an adapter rejects a file for looking cut
  short (KITH not well-formed or empty, an HL7 batch without its end), :meth:`Inbox.still_arriving`
  says whether to leave it: it changed since it was opened (its writer is at work), or it has not yet
  been unchanged for ``incomplete_grace_seconds`` (logged once, ``inbox.incomplete_waiting``). Such a
  file is not read again until it changes or the grace is over.

Log lines name files by :func:`engine.redact.file_ref` only.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog

from adapters.files import (
    FileDropSettings,
    InboxFile,
    NotARegularFile,
    Signature,
    StableWatcher,
    lstat_signature,
    move_to_error,
    open_inbox_file,
    settled,
    signature,
)
from engine.redact import file_ref
from engine.supervise import Backoff

log = structlog.get_logger(__name__)

BACKOFF_CAP = 30.0
#: open() errors of the process or the system, not of one file: the whole loop backs off
PROCESS_WIDE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
NOT_REGULAR = "INBOX_NOT_REGULAR"
T = TypeVar("T")


def errno_name(exc: OSError) -> str:
    """``EACCES``, ``EMFILE``, ... (the class name when the error carries no errno)."""
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


class InboxUnavailable(Exception):
    """An ``OSError`` that stops the whole poll (not one file): the loop backs off and tries again."""

    def __init__(self, op: str, error: OSError) -> None:
        super().__init__(f"{op}: {errno_name(error)}")
        self.op, self.error = op, error


@dataclass
class Availability:
    """Whether a directory an adapter depends on works. Logs ``<what>.unavailable`` once when it starts
    failing (or fails with another errno) and ``<what>.available`` once when it works again; the wait
    before the next attempt is the services' :class:`engine.supervise.Backoff`, from ``base`` doubling
    up to ``cap`` seconds, back to ``base`` once it works."""

    adapter: str
    what: str  # inbox | outbox | archive (the moves to archive/ and error/)
    base: float
    cap: float = BACKOFF_CAP
    failures: int = 0
    _wait: float = 0.0  # the last wait while failing (0: working)
    _errno: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def failing(self) -> bool:
        return self.failures > 0

    @property
    def backoff(self) -> Backoff:
        return Backoff(first=self.base, most=max(self.cap, self.base), healthy=float("inf"))

    def delay(self) -> float:
        """Seconds to wait before the next attempt (``base`` while it works)."""
        return self._wait or self.base

    def failed(self, exc: OSError, op: str) -> float:
        """Record a failure; the seconds to wait before trying again."""
        name = errno_name(exc)
        with self._lock:
            self.failures += 1
            self._wait = wait = self.backoff.next(self._wait, 0.0)
            changed, self._errno = name != self._errno, name
        if changed:
            log.warning(f"{self.what}.unavailable", adapter=self.adapter, errno=name, op=op, retry_in=round(wait, 2))
        return wait

    def ok(self) -> None:
        with self._lock:
            failures, self.failures, self._wait, self._errno = self.failures, 0, 0.0, None
        if failures:
            log.info(f"{self.what}.available", adapter=self.adapter, failed_attempts=failures)


@dataclass
class _Entry(Generic[T]):
    signature: Signature
    value: T
    retry_at: float = 0.0  # monotonic
    busy: bool = False  # being finished right now (by another thread)


class Unfinished(Generic[T]):
    """Files whose envelopes the broker confirmed and whose finishing (a receipt, the move) is not done,
    each with what the adapter needs to finish it (``T``). See the module docstring."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[Path, _Entry[T]] = {}

    def remember(self, path: Path, sig: Signature, value: T, *, busy: bool = False, retry_in: float = 0.0) -> None:
        """``path``, as it was when read (``sig``: what was published, not what it holds now), is published;
        ``busy``: a thread finishes it now; ``retry_in``: finishing it failed, try again in that many seconds."""
        with self._lock:
            self._items[path] = _Entry(sig, value, self._clock() + retry_in if retry_in else 0.0, busy)

    def retry_in(self, path: Path, seconds: float) -> None:
        """Finishing ``path`` failed: try again in ``seconds`` at the earliest."""
        with self._lock:
            entry = self._items.get(path)
            if entry is not None:
                entry.retry_at = self._clock() + seconds

    def forget(self, path: Path, value: T | None = None) -> None:
        """``path`` is finished (only if it is still remembered for ``value``, when given)."""
        with self._lock:
            entry = self._items.get(path)
            if entry is not None and (value is None or entry.value is value):
                del self._items[path]

    def release(self, paths: Iterable[Path]) -> None:
        """The thread finishing these files is done with them (finished or not)."""
        with self._lock:
            for p in paths:
                if (entry := self._items.get(p)) is not None:
                    entry.busy = False

    def __contains__(self, path: Path) -> bool:
        with self._lock:
            return path in self._items

    def prune(self, present: Collection[Path]) -> None:
        """Forget the files that are not ``present`` (the inbox's last listing), but those being finished."""
        with self._lock:
            for gone in [p for p, e in self._items.items() if not e.busy and p not in present]:
                del self._items[gone]

    def split(self, paths: Iterable[Path]) -> tuple[list[T], list[Path]]:
        """(what is due for another try, the files to read afresh) among ``paths``. A remembered file that
        is unchanged but not due, or being finished, is in neither; one that changed is forgotten and read
        afresh."""
        now = self._clock()
        due: list[T] = []
        fresh: list[Path] = []
        with self._lock:
            entries = [(p, self._items.get(p)) for p in paths]
        for p, entry in entries:
            if entry is None:
                fresh.append(p)
            elif entry.busy:
                continue
            elif lstat_signature(p) != entry.signature:
                self.forget(p, entry.value)
                fresh.append(p)
            elif now >= entry.retry_at:
                due.append(entry.value)
        return due, fresh


class Inbox:
    """One adapter's inbox: the poll loop, safe opens, entries that are not files, incomplete files."""

    def __init__(
        self,
        settings: FileDropSettings,
        adapter: str = "",
        watcher: StableWatcher | None = None,
        unfinished: Unfinished[Any] | None = None,
    ) -> None:
        self.settings, self.adapter = settings, adapter
        self.watcher = watcher or StableWatcher(settings)
        self.unfinished = unfinished  # the adapter's memory of files published, pruned at each listing
        self.state = Availability(adapter, "inbox", settings.poll_interval)
        self._dirs_made = False
        self._lock = threading.Lock()
        self._refused: set[Path] = set()  # not regular files that could not be moved away (yet)
        self._unreadable: dict[Path, str] = {}  # file -> errno name, logged once
        self._incomplete: dict[Path, Signature] = {}  # file -> signature when judged incomplete

    # -- the loop -----------------------------------------------------------------------------
    def poll(self, stop: threading.Event, handle: Callable[[list[Path]], None], max_batch: int = 200) -> None:
        """Call ``handle(paths)`` with up to ``max_batch`` stable files at a time until ``stop`` is set."""
        while not stop.is_set():
            stop.wait(self.poll_once(handle, max_batch, stop))

    def poll_once(
        self, handle: Callable[[list[Path]], None], max_batch: int = 200, stop: threading.Event | None = None
    ) -> float:
        """One poll: list, move away what is not a file, hand the stable files to ``handle``. Returns the
        seconds to wait before the next poll (the backoff while the inbox is unavailable)."""
        try:
            ready = self._ready()
            for i in range(0, len(ready), max_batch):
                if stop is not None and stop.is_set():
                    break
                chunk = ready[i : i + max_batch]
                handle(chunk)
                for p in chunk:
                    self.watcher.forget(p)
        except InboxUnavailable as exc:
            return self.state.failed(exc.error, exc.op)
        except OSError as exc:  # an adapter lets through only what stops every file (EMFILE ...): all of it waits
            return self.state.failed(exc, "handle")
        self.state.ok()
        return self.settings.poll_interval

    @property
    def pending(self) -> int:
        """Regular files that matched at the last listing (ready or not)."""
        return len(self.watcher.stats)

    def _ready(self) -> list[Path]:
        if not self._dirs_made:
            try:
                self.settings.ensure_dirs()
            except OSError as exc:
                raise InboxUnavailable("mkdir", exc) from None
            self._dirs_made = True
        try:
            ready = self.watcher.stable_files()
        except OSError as exc:
            raise InboxUnavailable("list", exc) from None
        for path, kind in self.watcher.irregular:
            self.refuse(path, kind)
        present = self.watcher.stats
        with self._lock:
            for memo in (self._unreadable, self._incomplete):
                for gone in [p for p in memo if p not in present]:
                    del memo[gone]
        if self.unfinished is not None:
            self.unfinished.prune(present)
        return [p for p in ready if not self._waiting(p)]

    # -- opening files ---------------------------------------------------------------------------
    def open(self, path: Path) -> InboxFile | None:
        """Open an inbox file safely; None when it is gone, is not a regular file (then moved to
        ``error/``) or cannot be opened for a reason of its own (it stays, logged once). Raises
        :class:`InboxUnavailable` when the process cannot open anything (``EMFILE`` ...)."""
        try:
            f = open_inbox_file(path)
        except FileNotFoundError:
            return None
        except NotARegularFile as exc:
            self.refuse(path, str(exc))
            return None
        except OSError as exc:
            if exc.errno in PROCESS_WIDE:
                raise InboxUnavailable("open", exc) from None
            self.unreadable(path, exc)
            return None
        return f  # still remembered as unreadable until handled (done) or gone: a read error is logged once too

    def unreadable(self, path: Path, exc: OSError) -> None:
        """A file that cannot be opened or read for a reason of its own: it stays, logged once per errno."""
        name = errno_name(exc)
        with self._lock:
            first, self._unreadable[path] = self._unreadable.get(path) != name, name
        if first:
            log.warning("inbox.file_unreadable", adapter=self.adapter, file=file_ref(path.name), errno=name)

    # -- entries that are not regular files ------------------------------------------------------
    def refuse(self, path: Path, kind: str) -> None:
        """Move a non-regular entry (the entry itself) to ``error/`` with its reason; never read it.
        Logged once; if it cannot be moved it stays, ignored, and the move is tried again later."""
        reason = f"{NOT_REGULAR}: a {kind} in the inbox is never read"
        try:
            target = move_to_error(path, self.settings, reason)
        except FileNotFoundError:
            return
        except OSError as exc:
            with self._lock:
                first = path not in self._refused
                self._refused.add(path)
            if first:
                log.warning(
                    "inbox.not_regular",
                    adapter=self.adapter,
                    file=file_ref(path.name),
                    kind=kind,
                    code=NOT_REGULAR,
                    moved=False,
                    errno=errno_name(exc),
                )
            return
        with self._lock:
            logged = path in self._refused
            self._refused.discard(path)
        if not logged:
            log.warning(
                "inbox.not_regular",
                adapter=self.adapter,
                file=file_ref(path.name),
                kind=kind,
                code=NOT_REGULAR,
                moved_to=file_ref(target.name),
            )

    # -- files that look incomplete --------------------------------------------------------------
    def still_arriving(self, f: InboxFile, code: str) -> bool:
        """Call before rejecting ``f`` for looking incomplete (``code``). True: leave it in the inbox,
        because it changed since it was opened, or it has not been unchanged for
        ``incomplete_grace_seconds`` yet (then it is not read again before it changes or the grace ends)."""
        if f.changed():
            return True
        if f.settled(self.settings.incomplete_grace_seconds):
            with self._lock:
                self._incomplete.pop(f.path, None)
            return False
        with self._lock:
            first = f.path not in self._incomplete
            self._incomplete[f.path] = f.signature
        if first:
            log.info(
                "inbox.incomplete_waiting",
                adapter=self.adapter,
                file=file_ref(f.path.name),
                code=code,
                grace_seconds=self.settings.incomplete_grace_seconds,
            )
        return True

    def _waiting(self, path: Path) -> bool:
        """A file judged incomplete, unchanged since, whose grace is not over: not worth reading again."""
        with self._lock:
            sig = self._incomplete.get(path)
        st = self.watcher.stats.get(path)
        return (
            sig is not None
            and st is not None
            and signature(st) == sig
            and not settled(st, self.settings.incomplete_grace_seconds)
        )

    def done(self, path: Path) -> None:
        """Forget what is remembered about ``path`` (it was handled)."""
        with self._lock:
            self._incomplete.pop(path, None)
            self._unreadable.pop(path, None)


__all__ = [
    "BACKOFF_CAP",
    "NOT_REGULAR",
    "PROCESS_WIDE",
    "Availability",
    "Inbox",
    "InboxUnavailable",
    "Unfinished",
    "errno_name",
]
