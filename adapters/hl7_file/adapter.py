"""The HL7 v2 file adapter: one stable file at a time, published as a stream, archived after the confirm
(see :mod:`adapters.hl7_file`)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import BinaryIO

import structlog

from adapters.base import AdapterRuntime
from adapters.files import (
    InboxFile,
    Signature,
    lstat_signature,
    move_to_archive,
    move_to_error,
    write_reason,
)
from adapters.handoff import Handoff
from adapters.hl7_file.options import Hl7FileOptions
from adapters.hl7_file.stream import FileRun, RunLimits, RunResult
from adapters.hl7_intake.options import load_strict
from adapters.inbox import Availability, Inbox, InboxUnavailable, Unfinished, errno_name
from engine.errors import BusUnavailable
from engine.redact import file_ref
from mappings.hl7v2.batch import looks_truncated

log = structlog.get_logger(__name__)
_PEEK = 4096
_CUT = "HL7_BATCH_TRUNCATED"
_NO_MSH = "HL7_NO_MSH"


class Hl7FileAdapter:
    """See :mod:`adapters.hl7_file`."""

    def __init__(self, name: str, settings: Hl7FileOptions, runtime: AdapterRuntime) -> None:
        self.name, self.settings = name, settings
        self.handoff = Handoff(name, runtime.bus, "hl7_file")
        self._strict = load_strict(settings)
        #: files whose every message was confirmed but whose move to archive/ failed: only the move is
        #: retried (publishing them again each poll would archive the same messages again and again)
        self._published: Unfinished[tuple[Signature, RunResult]] = Unfinished()
        self.inbox = Inbox(settings, name, unfinished=self._published)
        self._moves = Availability(name, "archive", settings.poll_interval)

    def check(self) -> None:
        """The inbox exists, and it and ``archive/`` and ``error/`` can be written (nothing is created)."""
        self.settings.check_dirs(self.name)

    def run(self, stop: threading.Event) -> None:
        log.info("hl7_file.started", adapter=self.name)
        self.inbox.poll(stop, lambda paths: self.handle(paths[0]), max_batch=1)
        log.info("hl7_file.stopped", adapter=self.name)

    def handle(self, path: Path) -> None:
        """Handle one stable file; one bad file never stops the loop (raises only
        :class:`adapters.inbox.InboxUnavailable`: no file can be opened, the poll loop backs off)."""
        due, fresh = self._published.split([path])
        for sig, res in due:  # published already: only its move is left
            self._archive(path, sig, res)
        if not fresh:
            return
        f = self.inbox.open(path)  # not a regular file: moved to error/ there
        if f is None:
            return
        try:
            with f.reader() as reader:
                self._handle(path, f, reader)
        except OSError as exc:  # reading it failed (the moves catch their own errors)
            self.inbox.unreadable(path, exc)
        except InboxUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the loop: the file stays for the next poll
            log.error("hl7_file.handle_failed", adapter=self.name, file=file_ref(path.name), error=type(exc).__name__)

    def _handle(self, path: Path, f: InboxFile, reader: BinaryIO) -> None:
        s = self.settings
        if f.size > s.max_file_bytes:
            self._to_error(path, f"HL7_FILE_TOO_LARGE: {f.size} bytes > max_file_bytes={s.max_file_bytes}")
            return
        if self._looks_cut(reader, f) and self.inbox.still_arriving(f, _CUT):
            return  # its writer may only be pausing: looked at again once unchanged for the grace
        run = FileRun(
            adapter=self.name,
            name=path.name,
            options=s,
            source_system=s.source_system,
            handoff=self.handoff,
            strict=self._strict,
            limits=RunLimits(s.max_message_bytes, s.publish_group_messages, s.publish_group_bytes),
        )
        try:
            res = run.run(reader, lambda r: self._may_finish(path, f, r))
        except BusUnavailable as exc:  # nothing is archived: the file is published again whole at the next poll
            self.handoff.failed(exc, file=file_ref(path.name))
            return
        if res.messages == 0:
            if not self.inbox.still_arriving(f, _NO_MSH):  # empty or half-written: its writer may be pausing
                self._to_error(path, f"{_NO_MSH}: no MSH segment found")
        elif not res.held_back:
            self._archive(path, f.signature, res)

    def _looks_cut(self, reader: BinaryIO, f: InboxFile) -> bool:
        """Whether the file opens a batch but does not end with its trailer (cheap: first and last bytes)."""
        head = reader.read(_PEEK)
        reader.seek(max(0, f.size - _PEEK))
        tail = reader.read(_PEEK)
        reader.seek(0)
        return looks_truncated(head, tail)

    def _may_finish(self, path: Path, f: InboxFile, res: RunResult) -> bool:
        """The last group goes out unless the file changed while it was read, or looks cut and has not been
        unchanged for ``incomplete_grace_seconds`` yet."""
        if f.changed():
            log.info("hl7_file.changed_while_read", adapter=self.name, file=file_ref(path.name))
            return False
        return not res.truncated or not self.inbox.still_arriving(f, _CUT)

    def _archive(self, path: Path, sig: Signature, res: RunResult) -> None:
        """Move a file whose every message was confirmed (``sig``: the file that was read) to archive/.
        If it changed since, it stays, to be read again whole; if the move fails it is remembered as
        published and only the move is retried, after a backoff."""
        current = lstat_signature(path)
        if current != sig:
            self._published.forget(path)
            if current is not None:
                log.info("hl7_file.changed_while_read", adapter=self.name, file=file_ref(path.name))
            return
        try:
            target = move_to_archive(path, self.settings)
        except FileNotFoundError:
            self._published.forget(path)
            return
        except OSError as exc:
            self._published.remember(path, sig, (sig, res), retry_in=self._moves.failed(exc, "move"))
            return
        self._moves.ok()
        self._published.forget(path)
        self.inbox.done(path)
        self._write_reason(target, res)
        log.info(
            "hl7_file.archived",
            adapter=self.name,
            file=file_ref(path.name),
            messages=res.messages,
            rejected=res.rejected_total,
            file_problems=len(res.file_problems),
        )

    def _write_reason(self, target: Path, res: RunResult) -> None:
        """The archived file's ``.reason`` (its rejects are in the dead letters either way)."""
        reason = res.reason_text()
        if not reason:
            return
        try:
            write_reason(target, reason)
        except OSError as exc:
            log.warning(
                "hl7_file.reason_not_written", adapter=self.name, file=file_ref(target.name), errno=errno_name(exc)
            )

    def _to_error(self, path: Path, reason: str) -> None:
        """Move a file that cannot be handled to error/; if that fails it stays (nothing of it was
        published) and is tried again at a later poll, logged once per episode (``archive.unavailable``)."""
        try:
            move_to_error(path, self.settings, reason)
        except FileNotFoundError:
            return
        except OSError as exc:
            self._moves.failed(exc, "move")
            return
        self._moves.ok()
        self.inbox.done(path)
        log.warning("hl7_file.error", adapter=self.name, file=file_ref(path.name), reason=reason.split(":", 1)[0])


__all__ = ["Hl7FileAdapter"]
