"""HL7 v2 file adapter (``type: hl7-file``): files of one or many HL7 v2.1-2.8 messages in a directory.

A file may hold one message, many messages, or FHS/BHS batches; segments end in CR, LF or CRLF;
blank lines and ``//`` comments are ignored (:mod:`mappings.hl7v2.batch`). Config::

    adapters:
      lab-files:
        type: hl7-file
        directory: /srv/enjournal/in/lab
        pattern: "*.hl7"
        mapping: hl7v2
        source_system: lab
        default_charset: iso-8859-1   # when MSH-18 is empty
        accepted_types: [ADT, ORU, MDM]
        max_message_bytes: 8388608    # one message (unset: what one bus message carries); larger: dead-lettered
        incomplete_grace_seconds: 60  # unchanged this long before a cut-looking batch file is handled

For each stable file (never one still being written), opened without following a symlink and only if
it is a regular file (:class:`adapters.inbox.Inbox`: anything else moves to ``error/`` unread), read as a
stream (:mod:`adapters.hl7_stream`: memory does not grow with the size of the file):

* every message is triaged like an MLLP message (:mod:`adapters.mllp.triage`: MSH readable, type
  accepted, optional strict check) and becomes one envelope (``content_type="application/hl7-v2"``,
  charset from MSH-18, ``dedup_key`` ``HL7|MSH-3|MSH-4|MSH-10``, attributes ``file``, ``index``
  (0-based position in the file), ``count`` (on the envelopes of the file's last publish group: all of
  them for a file of up to ``publish_group_messages`` messages / ``publish_group_bytes``) and
  ``charset_repaired`` when the bytes were not in the declared charset); a bad message carries
  ``reject = "CODE: text"`` and is dead-lettered by the worker while the good ones go through;
* messages are published in groups, one in flight while the next is read; only after every group was
  confirmed does the file move to ``archive/``, with a ``.reason`` file listing the rejected positions
  and codes and the file-level problems (never content) when there were any. A crash or a bus failure
  in between leaves the file, which is published again whole (the journal absorbs the repeat);
* a message over ``max_message_bytes`` is rejected once (``HL7_MESSAGE_TOO_LARGE``, sizes only,
  dead-lettered without its bytes) and its neighbours go through;
* batch integrity (:mod:`mappings.hl7v2.batch`): the message left open where a FHS/BHS file ends
  without its BTS/FTS is rejected as ``HL7_BATCH_TRUNCATED``, never mapped; a BTS-1/FTS-1 count that
  does not match is ``HL7_BATCH_COUNT_MISMATCH`` (the intact messages go through). Both are in the
  ``.reason`` file and the dead letters. A file that looks cut is left alone until it has been unchanged
  for ``incomplete_grace_seconds`` (its writer may only be pausing:
  :meth:`adapters.inbox.Inbox.still_arriving`); a file that changed while it was read is left for the
  next poll;
* a file with no message at all (``HL7_NO_MSH``) moves to ``error/`` with a ``.reason`` file once it has
  been unchanged for ``incomplete_grace_seconds`` (an empty or half-written file may be growing); a file
  larger than ``max_file_bytes`` at once, unread; if the bus is unavailable the file stays and is tried
  again at the next poll;
* a file whose messages were all confirmed but which cannot be moved (``archive/`` full or not
  writable) is remembered as published (:class:`adapters.inbox.Unfinished`): it is not published again
  while it is unchanged; only the move is retried, with a backoff, logged ``archive.unavailable`` once
  and ``archive.available`` when it works again. A file that changed after it was read is never
  archived for what was published: it is read again whole at the next poll.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import BinaryIO, Literal

import structlog
from pydantic import Field

from adapters.base import AdapterRuntime
from adapters.files import (
    FileDropSettings,
    InboxFile,
    Signature,
    lstat_signature,
    move_to_archive,
    move_to_error,
    write_reason,
)
from adapters.hl7_stream import FileRun, RunLimits, RunResult
from adapters.inbox import Availability, Inbox, InboxUnavailable, Unfinished, errno_name
from adapters.mllp.triage import Hl7Options, load_strict
from engine.errors import BusUnavailable, ConfigError
from engine.redact import file_ref
from mappings.hl7v2.batch import looks_truncated

log = structlog.get_logger(__name__)
_PEEK = 4096
_CUT = "HL7_BATCH_TRUNCATED"
_NO_MSH = "HL7_NO_MSH"


class Settings(FileDropSettings, Hl7Options):
    type: Literal["hl7-file"] = "hl7-file"
    #: one message inside a file; a larger one is rejected (HL7_MESSAGE_TOO_LARGE) without its bytes
    max_message_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    #: messages published together (one call, confirmed before the next group is sent)
    publish_group_messages: int = Field(default=1000, ge=1, le=100_000)
    publish_group_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)

    def published_limits(self) -> dict[str, int]:
        """The largest envelope (:mod:`engine.limits`): one message, never a whole file."""
        return {"max_message_bytes": self.max_message_bytes}


class Hl7FileAdapter:
    def __init__(self, name: str, settings: Settings, runtime: AdapterRuntime) -> None:
        self.name, self.settings, self.runtime = name, settings, runtime
        self._strict = load_strict(settings)
        #: files whose every message was confirmed but whose move to archive/ failed: only the move is
        #: retried (publishing them again each poll would archive the same messages again and again)
        self._published: Unfinished[tuple[Signature, RunResult]] = Unfinished()
        self.inbox = Inbox(settings, name, unfinished=self._published)
        self._moves = Availability(name, "archive", settings.poll_interval)

    def check(self) -> None:
        try:
            self.settings.ensure_dirs()
        except OSError as exc:
            raise ConfigError(f"adapter {self.name!r}: cannot create directories ({exc.strerror})") from None

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
            bus=self.runtime.bus,
            strict=self._strict,
            limits=RunLimits(s.max_message_bytes, s.publish_group_messages, s.publish_group_bytes),
        )
        try:
            res = run.run(reader, lambda r: self._may_finish(path, f, r))
        except BusUnavailable as exc:
            log.warning("hl7_file.publish_failed", adapter=self.name, file=file_ref(path.name), code=exc.code)
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


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> Hl7FileAdapter:
    return Hl7FileAdapter(name, settings, runtime)


__all__ = ["Hl7FileAdapter", "Settings", "build"]
