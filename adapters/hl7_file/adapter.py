"""The HL7 v2 file adapter: one stable file at a time, published as a stream, archived after the confirm
(see :mod:`adapters.hl7_file`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
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
from adapters.hl7_intake.triage import CONTENT_TYPE
from adapters.inbox import Availability, Inbox, InboxUnavailable, Unfinished, errno_name
from adapters.rejected_file import rejected_file
from engine.envelope import Envelope
from engine.errors import BusUnavailable
from engine.redact import file_ref
from engine.rejection import Rejection
from mappings.hl7v2.batch import looks_truncated

log = structlog.get_logger(__name__)
_PEEK = 4096
_CUT = "HL7_BATCH_TRUNCATED"
_NO_MSH = "HL7_NO_MSH"


@dataclass(frozen=True)
class _Published:
    """A file whose envelopes were all confirmed (``signature``: the file that was read); only its move is
    left: to ``archive/``, or to ``error/`` with ``error`` as its reason (a file with no message in it)."""

    signature: Signature
    result: RunResult
    error: str | None = None


class Hl7FileAdapter:
    """See :mod:`adapters.hl7_file`."""

    def __init__(self, name: str, settings: Hl7FileOptions, runtime: AdapterRuntime) -> None:
        self.name, self.settings = name, settings
        self.handoff = Handoff(name, runtime.bus, "hl7_file")
        self._strict = load_strict(settings)
        #: files whose every envelope was confirmed but whose move failed: only the move is retried
        #: (publishing them again each poll would archive the same messages again and again)
        self._published: Unfinished[_Published] = Unfinished()
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
        for done in due:  # published already: only its move is left
            self._finish(path, done)
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
                self._reject_file(path, f, reader, res)
        elif not res.held_back:
            self._finish(path, _Published(f.signature, res))

    def _reject_file(self, path: Path, f: InboxFile, reader: BinaryIO, res: RunResult) -> None:
        """Publish a file with no message in it as one rejected envelope (its bytes up to
        ``max_message_bytes``), so it is archived and dead-lettered; only after the confirm does it move to
        ``error/``. If the bus is unavailable, or the file changed while it was read, it stays."""
        s = self.settings
        rejection = Rejection(code=_NO_MSH, text="no MSH segment found")
        out = rejected_file(reader, f, rejection, s.max_message_bytes, "max_message_bytes")
        if out is None:
            log.info("hl7_file.changed_while_read", adapter=self.name, file=file_ref(path.name))
            return
        env = Envelope.build(
            out.raw,
            adapter=self.name,
            mapping=s.mapping,
            content_type=CONTENT_TYPE,
            source_system=s.source_system,
            attributes={"file": path.name, "scope": "file"},
            rejection=out.rejection,
        )
        try:
            self.handoff.publish([env])
        except BusUnavailable as exc:  # nothing is moved: the file is tried again at the next poll
            self.handoff.failed(exc, file=file_ref(path.name))
            return
        self._finish(path, _Published(f.signature, res, error=str(out.rejection)))

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

    def _finish(self, path: Path, done: _Published) -> None:
        """Move a file whose every envelope was confirmed to archive/ (or error/). If it changed since it
        was read, it stays, to be read again whole; if the move fails it is remembered as published and
        only the move is retried, after a backoff."""
        current = lstat_signature(path)
        if current != done.signature:
            self._published.forget(path)
            if current is not None:
                log.info("hl7_file.changed_while_read", adapter=self.name, file=file_ref(path.name))
            return
        try:
            if done.error is not None:
                target = move_to_error(path, self.settings, done.error)
            else:
                target = move_to_archive(path, self.settings)
        except FileNotFoundError:
            self._published.forget(path)
            return
        except OSError as exc:
            self._published.remember(path, done.signature, done, retry_in=self._moves.failed(exc, "move"))
            return
        self._moves.ok()
        self._published.forget(path)
        self.inbox.done(path)
        if done.error is not None:
            code = done.error.split(":", 1)[0]
            log.warning("hl7_file.error", adapter=self.name, file=file_ref(path.name), reason=code, published=True)
            return
        res = done.result
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
        """Move a file that is not read (too large) to error/ unpublished; if that fails it stays and is
        tried again at a later poll, logged once per episode (``archive.unavailable``)."""
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
