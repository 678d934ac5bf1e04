"""CSV export adapter: picks up delimited exports from a directory (cron or continuous polling),
validates rows, publishes chunks of rows, resumes after a crash, writes reject reports.

Supports ``;`` ``,`` and tab (sniffed or configured), UTF-8 (with or without BOM), Windows-1252 and
ISO-8859-1, quoted fields with embedded newlines. The rows are mapped by the worker with the
declarative mapping :mod:`mappings.csv_decl`; this adapter only checks the rows that decide a reject.
Config example (under ``adapters:``)::

    care-decisions:
      type: csv
      directory: /srv/enjournal/in/vedtak
      pattern: "vedtak_*.csv"
      schedule: "30 2 * * *"          # 02:30 Europe/Oslo; omit to poll continuously
      encoding: auto                  # utf-8 / utf-8-sig / cp1252 / iso-8859-1
      batch_rows: 500
      max_line_bytes: 1048576         # a longer record is rejected (CSV_LINE_TOO_LONG), never read whole
      spec:
        kind: care_event
        key: [vedtak_id]
        subject: {national: fnr, scope: kommune-x}
        event_time: {column: vedtaksdato, formats: [dd.mm.yyyy]}
        fields: {event_code: {column: tjeneste, table: tjenester}}
        tables: {tjenester: {path: deploy/csv/tables/tjenester.csv, system: "2.16.578.1.12.4.1.1.9151"}}
"""

from __future__ import annotations

import fnmatch
import threading
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import Field, PrivateAttr, field_validator

from adapters.base import AdapterRuntime
from adapters.csv.importer import CHUNK_BYTES, REJECTS_SUFFIX, import_file
from adapters.csv.reader import open_csv, scan
from adapters.csv.schedule import run_schedule, validate_cron
from adapters.csv.tables import load_table
from adapters.files import (
    FileDropSettings,
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
from mappings.csv_decl import CsvSpec, Plan

log = structlog.get_logger("enjournal.adapters.csv")


class Settings(FileDropSettings):
    type: Literal["csv"] = "csv"
    mapping: str = "csv"
    pattern: str = "*.csv"
    schedule: str | None = None
    delimiter: Literal[";", ",", "\t", "|"] | None = None
    encoding: Literal["auto", "utf-8", "utf-8-sig", "cp1252", "iso-8859-1"] = "auto"
    state_dir: Path | None = None
    batch_rows: int = Field(default=500, ge=1, le=100_000)
    chunks_per_publish: int = Field(default=8, ge=1, le=1000)
    publish_attempts: int = Field(default=5, ge=1, le=100)
    max_file_bytes: int = Field(default=64 * 1024**3, gt=0)
    #: one record (a line, or a quoted record over several lines); a longer one is rejected, never read whole
    max_line_bytes: int = Field(default=1024 * 1024, ge=1024)
    spec: CsvSpec
    _options: dict[str, Any] | None = PrivateAttr(default=None)

    _cron = field_validator("schedule")(classmethod(lambda cls, v: v if v is None else validate_cron(v)))

    @property
    def state(self) -> Path:
        return self.state_dir or self.directory / ".state"

    def own_dirs(self) -> list[Path]:
        return [*super().own_dirs(), self.state]

    def published_limits(self) -> dict[str, int]:
        """The largest envelope (:mod:`engine.limits`): a chunk closes once its rows may take ``CHUNK_BYTES``;
        the last row and the header each take at most 2 x ``max_line_bytes`` in it (a row that would take
        more is rejected as too long)."""
        return {"max_line_bytes": CHUNK_BYTES + 4 * self.max_line_bytes}

    def record_source(self, adapter: str) -> str:
        """Record-key prefix: the spec's ``source``, else the source system, else the adapter name."""
        return self.spec.source or self.source_system or adapter

    def mapping_options(self) -> dict[str, Any]:
        """The spec as a JSON-able dict for ``ctx.options``, code tables loaded (once)."""
        if self._options is None:
            opts = self.spec.model_dump(mode="json", exclude_none=True)
            for name, table in self.spec.tables.items():
                codes = load_table(Path(table.path)) if table.path else {}
                codes.update(opts["tables"][name].get("codes", {}))
                opts["tables"][name] = {**opts["tables"][name], "codes": codes}
                opts["tables"][name].pop("path", None)
            if self.delimiter:
                opts["delimiter"] = self.delimiter
            self._options = opts
        return self._options


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
    def __init__(self, name: str, settings: Settings, runtime: AdapterRuntime) -> None:
        self.name, self.settings, self.runtime = name, settings, runtime
        self.inbox = Inbox(settings, name, _Watcher(settings))

    def check(self) -> None:
        """Spec valid, code tables readable, and (if a sample file is there) its header fits the spec."""
        s = self.settings
        try:
            s.mapping_options()
        except ConfigError as exc:
            raise ConfigError(f"adapter {self.name!r}: {exc}") from None
        if not s.directory.is_dir():
            return
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


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> CsvAdapter:
    return CsvAdapter(name, settings, runtime)
