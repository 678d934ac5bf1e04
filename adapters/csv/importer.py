"""The import of one CSV export: validate rows, publish chunks, checkpoint, report rejects, archive.

Flow (constant memory, one pass after the :func:`adapters.csv.reader.scan` pass)::

    rows -> Plan.check -> accepted rows grouped by ``batch_rows`` -> one envelope per chunk
                       -> rejected row -> its own envelope (with its ``rejection``) + <file>.rejects.csv
    ``chunks_per_publish`` chunks -> bus.publish (tenacity retry) -> reject report lines -> checkpoint

A chunk envelope's raw bytes are the header line (fully quoted, so the mapping reads the delimiter
off it) + the chunk's rows as UTF-8 CSV in the source delimiter; its id is derived from (adapter,
file sha256, first row), so a resumed import republishes the same ids. One publish is in flight
while the next group is read (1-deep pipeline); checkpoints are written in order, after confirms.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import structlog

from adapters.base import AdapterRuntime
from adapters.csv.checkpoint import Checkpoint, CheckpointStore
from adapters.csv.options import CHUNK_BYTES, REJECTS_SUFFIX, CsvOptions
from adapters.csv.reader import CsvFile, FileFacts, LineTooLong, Source, open_csv, scan
from adapters.csv.rejected import CONTENT_TYPE, envelope_id, publish, reject_file
from adapters.csv.summary import ImportSummary
from adapters.files import (
    InboxFile,
    NotARegularFile,
    move_entry,
    move_to_archive,
    open_inbox_file,
    write_reason,
)
from adapters.handoff import Handoff
from adapters.inbox import Inbox
from engine.envelope import Envelope
from engine.errors import ParseError, PermanentError
from engine.redact import file_ref
from engine.rejection import Rejection
from mappings.csv_decl import Plan, RowProblem, compile_spec

log = structlog.get_logger("enjournal.adapters.csv")
Progress = Callable[[int, int, int], None]  # rows done, total bytes, bytes done
Arriving = Callable[[InboxFile, str], bool]  # (file, reject code) -> leave it: it may still be written
#: reject codes of a file that may only be half-written (no header line yet, or a header cut short)
INCOMPLETE = frozenset({"CSV_EMPTY", "MISSING_COLUMN"})
MAX_PENDING_REJECTS = 2000
#: a row's bytes in the envelope (UTF-8, quoted), its padding apart, are at most this many times its bytes
#: in the file: a bound that sizes chunks; rows larger than :data:`_EXACT_FROM` in the file, and any row
#: whose bound would reject it, are measured instead (serialised once, and that serialisation is kept)
_GROWTH = 8
_EXACT_FROM = 8 * 1024


def import_file(
    name: str,
    settings: CsvOptions,
    runtime: AdapterRuntime,
    path: Path | str,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    opened: InboxFile | None = None,
    still_arriving: Arriving | None = None,
) -> ImportSummary:
    """Import ``path`` for adapter ``name``; resume at its checkpoint; archive it when complete.

    A file inside the adapter's directory is read only if it is a regular file (opened without following
    a link: ``opened`` when the caller did that already) and is moved to ``archive/`` (or ``error/`` with
    a reason), unless it changed while it was imported (then it stays and is imported again); a file
    elsewhere (``enjournal import``) stays where it is. Raises :class:`BusUnavailable` when the bus stays
    down (the checkpoint stays where it is), ``OSError`` when an inbox file cannot be read now (it stays)
    and :class:`PermanentError` for a file that cannot be imported (codes ``CSV_EMPTY``, ``ENCODING_ERROR``,
    ``CSV_MALFORMED``, ``MISSING_COLUMN``, ``INBOX_NOT_REGULAR`` ...): an inbox file is first published as
    one rejected envelope with that code (:func:`adapters.csv.rejected.reject_file`: archived and
    dead-lettered) and only after the confirm moved to ``error/``; if the bus is down it stays. With
    ``still_arriving`` (the poll loop's :meth:`adapters.inbox.Inbox.still_arriving`), a file that may only
    be half-written (:data:`INCOMPLETE`: no header yet, or a header cut short) stays in the inbox until it
    has been unchanged for ``incomplete_grace_seconds``.
    """
    path = Path(path)
    owned = Path(os.path.abspath(path)).parent.resolve() == settings.directory.resolve()
    f = opened if opened is not None or not owned else _open_owned(name, settings, path)
    try:
        return _import(name, settings, runtime, path, f, progress, stop, still_arriving)
    finally:
        if opened is None and f is not None:
            f.close()


def _open_owned(name: str, settings: CsvOptions, path: Path) -> InboxFile:
    """Open an inbox file without following a link; anything but a regular file goes to error/ unread
    (:meth:`adapters.inbox.Inbox.refuse`, as the poll loop does)."""
    try:
        return open_inbox_file(path)
    except NotARegularFile as exc:
        Inbox(settings, name).refuse(path, str(exc))
        raise PermanentError(f"a {exc} in the inbox is never read", code=NotARegularFile.code) from None


def _import(
    name: str,
    settings: CsvOptions,
    runtime: AdapterRuntime,
    path: Path,
    f: InboxFile | None,
    progress: Progress | None,
    stop: threading.Event | None,
    still_arriving: Arriving | None,
) -> ImportSummary:
    """:func:`import_file` once the file is open (``f``: the inbox file, None for a file elsewhere)."""
    t0, owned = time.monotonic(), f is not None
    source: Source = f.reopen if f is not None else path  # an inbox file: through its descriptor, never its name
    try:
        facts = _scan(source, settings, owned)
        store = CheckpointStore(settings.state, name)
        if store.is_done(facts.sha256):
            return _unchanged(path, facts.sha256, store.done_summary(facts.sha256), settings, f, t0)
        summary = _Job(name, settings, runtime, path, facts, store, progress, source).run(stop)
    except PermanentError as exc:
        if f is not None and still_arriving is not None and exc.code in INCOMPLETE and still_arriving(f, exc.code):
            raise  # its writer may only be pausing: it stays (logged once by the inbox)
        log.warning("csv.file_failed", adapter=name, file=file_ref(path.name), code=exc.code)
        if f is not None and os.path.lexists(path) and not f.changed():
            reject_file(name, settings, runtime, path, f, exc)  # published as a dead letter, then moved
        raise
    summary.seconds = round(time.monotonic() - t0, 3)
    if summary.complete:
        _finish(path, settings, f, summary, name)
    log.info(
        "csv.imported",
        adapter=name,
        file=file_ref(path.name),
        rows=summary.rows,
        accepted=summary.accepted,
        rejected=summary.rejected,
        chunks=summary.chunks,
        complete=summary.complete,
    )
    return summary


def _scan(source: Source, settings: CsvOptions, owned: bool) -> FileFacts:
    """The file's facts; an inbox file that cannot be read now raises ``OSError`` (it stays and is
    tried again), any other file :class:`ParseError` ``FILE_UNREADABLE``."""
    try:
        return scan(source, settings.encoding)
    except OSError as exc:
        if owned:
            raise
        raise ParseError(f"file cannot be read ({exc.strerror})", code="FILE_UNREADABLE") from None


def _unchanged(
    path: Path, sha: str, done: Checkpoint | None, settings: CsvOptions, f: InboxFile | None, t0: float
) -> ImportSummary:
    d = done or Checkpoint()
    if f is not None and not f.changed():
        move_to_archive(path, settings)
    return ImportSummary(
        file=path.name,
        sha256=sha,
        rows=d.next_row,
        accepted=d.accepted,
        rejected=d.rejected,
        unchanged=True,
        chunks=0,
        seconds=round(time.monotonic() - t0, 3),
    )


def _finish(path: Path, settings: CsvOptions, f: InboxFile | None, summary: ImportSummary, name: str) -> None:
    """Archive an inbox file with its reject report; one that changed while it was imported stays (its
    writer was still at work: the next poll imports what it holds now)."""
    report = path.with_name(path.name + REJECTS_SUFFIX)
    if f is None:
        return
    if f.changed():
        log.warning("csv.changed_while_importing", adapter=name, file=file_ref(path.name))
        return
    target = move_to_archive(path, settings)
    if report.exists():
        move_entry(report, target.with_name(target.name + REJECTS_SUFFIX))  # archive/ may be on another filesystem
        write_reason(
            target,
            f"REJECTED_ROWS: {summary.rejected} of {summary.rows} rows rejected, "
            f"see the {REJECTS_SUFFIX} report beside this file",
        )


class _Report:
    """The reject report beside the file: ``row;column;reason`` (no values), truncated on resume. Its name is
    in the inbox, where a sender may plant anything: anything at it but a regular file of one link is
    removed first (the entry only), and it is written only through a descriptor that is a regular file of
    one link (never through a symlink, never into the target of a hard link, never blocking on a FIFO)."""

    def __init__(self, path: Path, keep_bytes: int) -> None:
        self.path, self.size = path, 0
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            path.unlink()
            return
        with self._open(os.O_RDWR) as f:
            f.truncate(keep_bytes)
            self.size = os.fstat(f.fileno()).st_size

    def _open(self, flags: int) -> BinaryIO:
        fd = os.open(self.path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                raise OSError(errno.EEXIST, "the reject report's name holds a file that is not the report")
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, "r+b" if flags & os.O_RDWR else "ab")

    def append(self, problems: list[tuple[int, RowProblem]]) -> None:
        if not problems:
            return
        lines = "".join(f"{n};{p.column};{p.code}\n" for n, p in problems)
        head = "row;column;reason\n" if self.size == 0 else ""
        with self._open(os.O_WRONLY | os.O_APPEND | os.O_CREAT) as f:
            f.write((head + lines).encode("utf-8"))
            f.flush()
            self.size = os.fstat(f.fileno()).st_size


class _Job:
    """State of one import run."""

    def __init__(
        self,
        name: str,
        settings: CsvOptions,
        runtime: AdapterRuntime,
        path: Path,
        facts: FileFacts,
        store: CheckpointStore,
        progress: Progress | None,
        source: Source,
    ) -> None:
        self.name, self.s, self.path, self.source = name, settings, path, source
        self.handoff = Handoff(name, runtime.bus, "csv")
        self.sha, self.size, self.encoding = facts.sha256, facts.size, facts.encoding
        self.store, self.progress = store, progress
        self.cp = store.load(self.sha)
        self.report = _Report(path.with_name(path.name + REJECTS_SUFFIX), self.cp.rejects_bytes)
        self.counts = self.cp.model_copy(update={"file": path.name})
        self.pending: list[Envelope] = []
        self.problems: list[tuple[int, RowProblem]] = []
        self.chunk: list[list[str] | bytes] = []  # rows: cells, or already serialised (measured) rows
        self.chunk_bytes = 0
        self.chunk_first = 0
        self.group_chunks = 0
        self.inflight: tuple[Future[None], Checkpoint, list[tuple[int, RowProblem]], int] | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"csv-publish-{name}")

    def run(self, stop: threading.Event | None) -> ImportSummary:
        try:
            with open_csv(self.source, self.encoding, self.s.delimiter, self.s.max_line_bytes) as f:
                complete = self._rows(f, stop)
            self._wait()
            if complete:
                self.store.mark_done(self.sha, self.counts)
        finally:
            self._drain_quietly()
            self.pool.shutdown(wait=True)
        c = self.counts
        return ImportSummary(
            file=self.path.name,
            sha256=self.sha,
            rows=c.next_row,
            accepted=c.accepted,
            rejected=c.rejected,
            chunks=c.chunks - self.cp.chunks,
            complete=complete,
        )

    def _rows(self, f: CsvFile, stop: threading.Event | None) -> bool:
        plan = compile_spec(self.s.mapping_options()).plan(f.raw_header, self.s.record_source(self.name))
        self.header = _line(f.raw_header, f.delimiter, quote_all=True)
        if len(self.header) > 2 * self.s.max_line_bytes:
            raise ParseError(
                f"header takes more than 2 x max_line_bytes={self.s.max_line_bytes} bytes as UTF-8",
                code="CSV_LINE_TOO_LONG",
            )
        self.delim, self.f = f.delimiter, f
        n = self.cp.next_row
        for n, row in f.rows(self._too_long):
            if n <= self.cp.next_row:
                continue
            self._take(plan, n, row)
            if len(self.pending) >= MAX_PENDING_REJECTS:
                self._close_chunk()  # many rejects: a shorter chunk keeps memory bounded (still deterministic)
            if not self.chunk and (
                self.group_chunks >= self.s.chunks_per_publish or len(self.pending) >= MAX_PENDING_REJECTS
            ):
                self._flush(n)
                if stop is not None and stop.is_set():
                    return False
        self._close_chunk()
        self._flush(max(n, self.counts.next_row))
        return True

    def _take(self, plan: Plan, n: int, row: list[str]) -> None:
        row, problem = plan.check(row)
        size, line = self._envelope_bytes(row)
        if size > 2 * self.s.max_line_bytes:  # pathological quoting or re-encoding: as if the line were too long
            self._too_long(n, LineTooLong(self.f.line_of_last_record, self.s.max_line_bytes))
            return
        if problem is None:
            if not self.chunk:
                self.chunk_first = n
            self.chunk.append(row if line is None else line)
            self.chunk_bytes += size
            if len(self.chunk) >= self.s.batch_rows or self.chunk_bytes >= CHUNK_BYTES:
                self._close_chunk()
            return
        self.problems.append((n, problem))
        raw = self.header + (line if line is not None else _line(row, self.delim))
        rejection = Rejection(code=problem.code, text=f"row {n} column {problem.column}")
        self.pending.append(self._envelope(raw, f"reject|{n}", {"row": str(n)}, rejection))

    def _envelope_bytes(self, row: list[str]) -> tuple[int, bytes | None]:
        """The bytes the (fitted) ``row`` takes in an envelope: a bound for a short row, unless the bound
        would reject it; otherwise measured, with the serialised row (used as it is in the chunk)."""
        n = self.f.last_record_bytes
        bound = n * _GROWTH + len(row)  # + one delimiter per cell: a padded row has cells the file had not
        if n <= _EXACT_FROM and bound <= 2 * self.s.max_line_bytes:
            return bound, None
        line = _line(row, self.delim)
        return len(line), line

    def _too_long(self, n: int, exc: LineTooLong) -> None:
        """A record over ``max_line_bytes``: rejected without its content (it was never read whole)."""
        if n <= self.cp.next_row:
            return
        self.problems.append((n, RowProblem(exc.code, f"line {exc.line}")))
        self.pending.append(self._envelope(self.header, f"reject|{n}", {"row": str(n)}, exc.rejection(n)))

    def _close_chunk(self) -> None:
        if not self.chunk:
            return
        raw = self.header + _rows(self.chunk, self.delim)  # the same bytes as one _line per row
        attrs = {"first_row": str(self.chunk_first), "rows": str(len(self.chunk))}
        self.pending.append(self._envelope(raw, str(self.chunk_first), attrs))
        self.counts.accepted += len(self.chunk)
        self.counts.chunks += 1
        self.group_chunks += 1
        self.chunk, self.chunk_bytes = [], 0

    def _envelope(self, raw: bytes, part: str, attrs: dict[str, str], rejection: Rejection | None = None) -> Envelope:
        return Envelope.build(
            raw,
            adapter=self.name,
            mapping=self.s.mapping,
            content_type=CONTENT_TYPE,
            source_system=self.s.source_system,
            charset="utf-8",
            attributes={"file": self.path.name, "sha256": self.sha, **attrs},
            id=envelope_id(self.name, self.sha, part),
            rejection=rejection,
        )

    def _flush(self, next_row: int) -> None:
        """Hand the pending group to the publisher; commit the previous group once it is confirmed."""
        self.counts.rejected += len(self.problems)
        self.counts.next_row = next_row
        batch, problems = self.pending, self.problems
        self.pending, self.problems, self.group_chunks = [], [], 0
        self._wait()
        fut = self.pool.submit(self._publish, batch) if batch else _done()
        self.inflight = (fut, self.counts.model_copy(), problems, self.f.bytes_done())

    def _publish(self, batch: list[Envelope]) -> None:
        publish(self.handoff, batch, self.s.publish_attempts)

    def _wait(self) -> None:
        if self.inflight is None:
            return
        fut, cp, problems, bytes_done = self.inflight
        self.inflight = None
        fut.result()  # BusUnavailable propagates: the checkpoint stays at the previous group
        self.report.append(problems)
        cp.rejects_bytes = self.report.size
        self.store.save(self.sha, cp)
        if self.progress is not None:
            self.progress(cp.next_row, self.size, bytes_done)

    def _drain_quietly(self) -> None:
        try:
            self._wait()
        except Exception as exc:  # noqa: BLE001 - the original error is already propagating
            log.warning(
                "csv.publish_abandoned", adapter=self.name, file=file_ref(self.path.name), error_type=type(exc).__name__
            )


def _done() -> Future[None]:
    f: Future[None] = Future()
    f.set_result(None)
    return f


def _line(cells: list[str], delimiter: str, quote_all: bool = False) -> bytes:
    buf = io.StringIO()
    csv.writer(
        buf, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    ).writerow(cells)
    return buf.getvalue().encode("utf-8")


def _rows(rows: list[list[str] | bytes], delimiter: str) -> bytes:
    """Rows as UTF-8 CSV lines; a row already serialised (bytes) is taken as it is, the others are written
    a run at a time."""
    parts: list[bytes] = []
    run: list[list[str]] = []
    for r in rows:
        if isinstance(r, bytes):
            if run:
                parts.append(_write(run, delimiter))
                run = []
            parts.append(r)
        else:
            run.append(r)
    if run:
        parts.append(_write(run, delimiter))
    return b"".join(parts)


def _write(rows: list[list[str]], delimiter: str) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")
