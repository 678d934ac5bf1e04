"""The poll loop of a directory-polling adapter, and what keeps it alive.

* **Only regular files.** Entries of the inbox that are not regular files (see
  :class:`adapters.files.StableWatcher`) are moved, the entry itself, to ``error/`` with a ``.reason``
  (``INBOX_NOT_REGULAR``), logged once (``inbox.not_regular``) and never read. :meth:`Inbox.open` does
  the same for an entry swapped between the listing and the open.
* **An inbox that fails is waited for.** An ``OSError`` while listing, creating directories, opening
  (descriptors or memory exhausted: ``EMFILE``, ``ENFILE``, ``ENOMEM``) or moving files makes the loop
  back off exponentially (from ``poll_interval``, capped at :data:`BACKOFF_CAP`) and try again; it logs
  ``inbox.unavailable`` with the errno name when that starts (or the errno changes) and
  ``inbox.available`` when a poll works again, never a line per poll. A file that cannot be opened for
  a reason of its own (``EACCES`` on that file) stays where it is, logged once, and its neighbours go on.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from adapters.files import FileDropSettings, InboxFile, NotARegularFile, StableWatcher, move_to_error, open_inbox_file
from engine.redact import file_ref

log = structlog.get_logger(__name__)

BACKOFF_CAP = 30.0
#: open() errors of the process or the system, not of one file: the whole loop backs off
PROCESS_WIDE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
NOT_REGULAR = "INBOX_NOT_REGULAR"


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
    before the next attempt doubles with each failure, from ``base`` up to ``cap`` seconds."""

    adapter: str
    what: str  # inbox | outbox | archive
    base: float
    cap: float = BACKOFF_CAP
    failures: int = 0
    _errno: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def delay(self) -> float:
        """Seconds to wait before the next attempt (``base`` while it works)."""
        return min(self.cap, self.base * 2 ** max(0, self.failures - 1))

    def failed(self, exc: OSError, op: str) -> float:
        """Record a failure; the seconds to wait before trying again."""
        name = errno_name(exc)
        with self._lock:
            self.failures += 1
            changed, self._errno = name != self._errno, name
            wait = self.delay()
        if changed:
            log.warning(f"{self.what}.unavailable", adapter=self.adapter, errno=name, op=op, retry_in=round(wait, 2))
        return wait

    def ok(self) -> None:
        with self._lock:
            failures, self.failures, self._errno = self.failures, 0, None
        if failures:
            log.info(f"{self.what}.available", adapter=self.adapter, failed_attempts=failures)


class Inbox:
    """One adapter's inbox: the poll loop, safe opens, entries that are not files, incomplete files."""

    def __init__(self, settings: FileDropSettings, adapter: str = "", watcher: StableWatcher | None = None) -> None:
        self.settings, self.adapter = settings, adapter
        self.watcher = watcher or StableWatcher(settings)
        self.state = Availability(adapter, "inbox", settings.poll_interval)
        self._dirs_made = False
        self._lock = threading.Lock()
        self._refused: set[Path] = set()  # not regular files that could not be moved away (yet)
        self._unreadable: dict[Path, str] = {}  # file -> errno name, logged once
        self._incomplete: dict[Path, tuple[int, int, int]] = {}  # file -> signature when judged incomplete

    # -- the loop -----------------------------------------------------------------------------
    def poll(self, stop: threading.Event, handle: Callable[[list[Path]], None], max_batch: int = 200) -> None:
        """Call ``handle(paths)`` with up to ``max_batch`` stable files at a time until ``stop`` is set."""
        while not stop.is_set():
            stop.wait(self.poll_once(handle, max_batch, stop))

    def poll_once(self, handle: Callable[[list[Path]], None], max_batch: int = 200,
                  stop: threading.Event | None = None) -> float:
        """One poll: list, move away what is not a file, hand the stable files to ``handle``. Returns the
        seconds to wait before the next poll (the backoff while the inbox is unavailable)."""
        try:
            ready = self._ready()
            for i in range(0, len(ready), max_batch):
                if stop is not None and stop.is_set():
                    break
                chunk = ready[i:i + max_batch]
                handle(chunk)
                for p in chunk:
                    self.watcher.forget(p)
        except InboxUnavailable as exc:
            return self.state.failed(exc.error, exc.op)
        except OSError as exc:  # raised by the adapter while handling (a move, a read): all of it waits
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
        with self._lock:
            self._unreadable.pop(path, None)
        return f

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
                log.warning("inbox.not_regular", adapter=self.adapter, file=file_ref(path.name), kind=kind,
                            code=NOT_REGULAR, moved=False, errno=errno_name(exc))
            return
        with self._lock:
            logged = path in self._refused
            self._refused.discard(path)
        if not logged:
            log.warning("inbox.not_regular", adapter=self.adapter, file=file_ref(path.name), kind=kind,
                        code=NOT_REGULAR, moved_to=file_ref(target.name))

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
            log.info("inbox.incomplete_waiting", adapter=self.adapter, file=file_ref(f.path.name), code=code,
                     grace_seconds=self.settings.incomplete_grace_seconds)
        return True

    def _waiting(self, path: Path) -> bool:
        """A file judged incomplete, unchanged since, whose grace is not over: not worth reading again."""
        with self._lock:
            sig = self._incomplete.get(path)
        st = self.watcher.stats.get(path)
        if sig is None or st is None or (st.st_ino, st.st_size, st.st_mtime_ns) != sig:
            return False
        last_change = max(st.st_mtime_ns, st.st_ctime_ns) / 1e9
        return time.time() - last_change < self.settings.incomplete_grace_seconds

    def done(self, path: Path) -> None:
        """Forget what is remembered about ``path`` (it was handled)."""
        with self._lock:
            self._incomplete.pop(path, None)
            self._unreadable.pop(path, None)


__all__ = ["BACKOFF_CAP", "Availability", "Inbox", "InboxUnavailable", "errno_name"]
