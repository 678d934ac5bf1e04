"""The CSV export adapter: polls or runs on a schedule and imports each stable file (see :mod:`adapters.csv`)."""

from __future__ import annotations

import fnmatch
import threading
from pathlib import Path

import structlog

from adapters.base import AdapterRuntime
from adapters.csv.importer import import_file
from adapters.csv.options import REJECTS_SUFFIX, CsvOptions
from adapters.csv.reader import open_csv, scan
from adapters.csv.schedule import run_schedule
from adapters.files import (
    InboxFile,
    NotARegularFile,
    StableWatcher,
    ignored,
    move_to_error,
    open_inbox_file,
)
from adapters.inbox import PROCESS_WIDE, Inbox
from engine.errors import ConfigError, EnjournalError, PermanentError
from engine.redact import file_ref
from mappings.csv_decl import Plan

log = structlog.get_logger("enjournal.adapters.csv")


class _Watcher(StableWatcher):
    """Stable-file detection with a case-insensitive pattern (``*.csv`` matches ``EXPORT.CSV``) that
    leaves reject reports alone."""

    def matches(self, name: str) -> bool:
        return (
            not ignored(name)
            and not name.endswith(REJECTS_SUFFIX)
            and fnmatch.fnmatchcase(name.casefold(), self.settings.pattern.casefold())
        )


class CsvAdapter:
    """See :mod:`adapters.csv`."""

    def __init__(self, name: str, settings: CsvOptions, runtime: AdapterRuntime) -> None:
        self.name, self.settings, self.runtime = name, settings, runtime
        self.inbox = Inbox(settings, name, _Watcher(settings))

    def check(self) -> None:
        """Spec valid, code tables readable, the directories there or creatable (nothing is created), and
        (if a sample file is there) its header fits the spec."""
        s = self.settings
        try:
            s.mapping_options()
        except ConfigError as exc:
            raise ConfigError(f"adapter {self.name!r}: {exc}") from None
        s.check_dirs(self.name)
        sample = next(iter(_Watcher(s).candidates()), None)
        if sample is not None:
            self._check_header(sample)

    def _check_header(self, sample: Path) -> None:
        """Read the sample as the poll would (never through a link); one that cannot be opened is left to it."""
        try:
            opened = open_inbox_file(sample)
        except (NotARegularFile, OSError):
            return
        s = self.settings
        try:
            with opened, open_csv(opened.reopen, scan(opened.reopen, s.encoding).encoding, s.delimiter) as f:
                Plan(s.spec, f.raw_header, s.record_source(self.name))
        except EnjournalError as exc:
            raise ConfigError(f"adapter {self.name!r}: sample {file_ref(sample.name)}: {exc.reason}") from None

    def run(self, stop: threading.Event) -> None:
        s = self.settings
        if s.schedule is None:
            self.inbox.poll(stop, lambda paths: self._poll_one(paths[0], stop), max_batch=1)
        else:
            run_schedule(stop, s.schedule, lambda: self._tick(stop))

    def _tick(self, stop: threading.Event) -> None:
        """Import every matching file once it is stable. The tick ends when none is left or the bus is
        down (the files wait for the next tick); an unavailable inbox is waited for, with a backoff."""
        paused = False

        def handle(paths: list[Path]) -> None:
            nonlocal paused
            paused = paused or not self._handle(paths[0], stop)

        while not stop.is_set():
            wait = self.inbox.poll_once(handle, 1, stop)
            if paused or (not self.inbox.state.failing and self.inbox.pending == 0):
                return
            stop.wait(wait)

    def _poll_one(self, path: Path, stop: threading.Event) -> None:
        self._handle(path, stop)  # a file left by a bus outage is seen again at a later poll

    def _handle(self, path: Path, stop: threading.Event) -> bool:
        """Import one file; False when the bus is down (the file stays for the next attempt). An OSError of
        this file (reading it, its reject report, its state, its move) leaves it where it is, logged once
        (``inbox.file_unreadable``), and the other files go on; only one that stops every file
        (:data:`adapters.inbox.PROCESS_WIDE`: ``EMFILE`` ...) goes to the poll loop, which backs off."""
        opened = self.inbox.open(path)
        if opened is None:
            return True  # taken away meanwhile, not a regular file (moved away), or unreadable (stays)
        try:
            with opened:
                self._import(path, opened, stop)
        except OSError as exc:
            if exc.errno in PROCESS_WIDE:
                raise
            self.inbox.unreadable(path, exc)
            return True
        except PermanentError:
            return True  # moved to error/ with its reason by import_file
        except Exception as exc:  # noqa: BLE001 - bus down, or a bug: the file stays, the adapter lives on
            code = exc.code if isinstance(exc, EnjournalError) else type(exc).__name__
            log.warning("csv.import_paused", adapter=self.name, file=file_ref(path.name), code=code)
            return False
        self.inbox.done(path)
        return True

    def _import(self, path: Path, opened: InboxFile, stop: threading.Event) -> None:
        if opened.size > self.settings.max_file_bytes:
            move_to_error(path, self.settings, "FILE_TOO_LARGE")
        else:
            import_file(
                self.name,
                self.settings,
                self.runtime,
                path,
                stop=stop,
                opened=opened,
                still_arriving=self.inbox.still_arriving,
            )


__all__ = ["CsvAdapter"]
