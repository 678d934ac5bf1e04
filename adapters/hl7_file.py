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
        max_message_bytes: 67108864   # one message; a larger one is dead-lettered without its bytes
        incomplete_after: 30          # seconds unchanged before a cut-looking batch file is handled

For each stable file (never one still being written), opened without following a symlink
(:func:`adapters.files.open_inbox_file`), read as a stream (:mod:`adapters.hl7_stream`: memory does not
grow with the size of the file):

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
  for ``incomplete_after`` seconds (its writer may only be pausing); a file that changed while it was
  read is left for the next poll;
* a file with no message at all, larger than ``max_file_bytes``, or not a regular file (a symlink, a
  device) moves to ``error/`` with a ``.reason`` file; if the bus is unavailable the file stays and is
  tried again at the next poll.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import BinaryIO, Literal

import structlog
from pydantic import Field

from adapters.base import AdapterRuntime
from adapters.files import (
    FileDropSettings,
    InboxFile,
    NotARegularFile,
    move_to_archive,
    move_to_error,
    open_inbox_file,
    poll_loop,
    write_reason,
)
from adapters.hl7_stream import FileRun, RunLimits, RunResult
from adapters.mllp.triage import Hl7Options, load_strict
from engine.errors import BusUnavailable, ConfigError
from engine.redact import file_ref, safe_reason
from mappings.hl7v2.batch import looks_truncated

log = structlog.get_logger(__name__)
_PEEK = 4096


class Settings(FileDropSettings, Hl7Options):
    type: Literal["hl7-file"] = "hl7-file"
    #: one message inside a file; a larger one is rejected (HL7_MESSAGE_TOO_LARGE) without its bytes
    max_message_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    #: messages published together (one call, confirmed before the next group is sent)
    publish_group_messages: int = Field(default=1000, ge=1, le=100_000)
    publish_group_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    #: seconds a FHS/BHS file that looks cut (no closing BTS/FTS) must be unchanged before it is handled
    incomplete_after: float = Field(default=30.0, ge=0)

    def published_limits(self) -> dict[str, int]:
        """The largest envelope (:mod:`engine.limits`): one message, never a whole file."""
        return {"max_message_bytes": self.max_message_bytes}


class Hl7FileAdapter:
    def __init__(self, name: str, settings: Settings, runtime: AdapterRuntime) -> None:
        self.name, self.settings, self.runtime = name, settings, runtime
        self._strict = load_strict(settings)
        self._waiting: dict[str, int] = {}  # file name -> mtime of a cut-looking file already logged

    def check(self) -> None:
        try:
            self.settings.ensure_dirs()
        except OSError as exc:
            raise ConfigError(f"adapter {self.name!r}: cannot create directories ({exc.strerror})") from None

    def run(self, stop: threading.Event) -> None:
        log.info("hl7_file.started", adapter=self.name)
        poll_loop(stop, self.settings, self.handle)
        log.info("hl7_file.stopped", adapter=self.name)

    def handle(self, path: Path) -> None:
        """Handle one stable file; never raises (one bad file never stops the loop)."""
        try:
            inbox = open_inbox_file(path)
        except FileNotFoundError:
            return
        except NotARegularFile as exc:
            self._to_error(path, f"{exc.code}: {exc}")
            return
        except OSError as exc:
            log.error("hl7_file.io_failed", adapter=self.name, file=file_ref(path), error=type(exc).__name__)
            return
        try:
            with inbox.reader() as reader:
                self._handle(path, inbox, reader)
        except OSError as exc:
            log.error("hl7_file.io_failed", adapter=self.name, file=file_ref(path), error=type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the loop: the file stays for the next poll
            log.error("hl7_file.handle_failed", adapter=self.name, file=file_ref(path), error=type(exc).__name__)

    def _handle(self, path: Path, inbox: InboxFile, reader: BinaryIO) -> None:
        s = self.settings
        if inbox.size > s.max_file_bytes:
            self._to_error(path, f"HL7_FILE_TOO_LARGE: {inbox.size} bytes > max_file_bytes={s.max_file_bytes}")
            return
        if self._looks_cut(reader, inbox) and not self._old_enough(path, inbox):
            return
        run = FileRun(adapter=self.name, name=path.name, options=s, source_system=s.source_system,
                      bus=self.runtime.bus, strict=self._strict,
                      limits=RunLimits(s.max_message_bytes, s.publish_group_messages, s.publish_group_bytes))
        try:
            res = run.run(reader, lambda r: self._may_finish(path, inbox, r))
        except BusUnavailable as exc:
            log.warning("hl7_file.publish_failed", adapter=self.name, file=file_ref(path), code=exc.code)
            return
        if res.messages == 0:
            self._to_error(path, "HL7_NO_MSH: no MSH segment found")
        elif not res.held_back:
            self._archive(path, res)

    def _looks_cut(self, reader: BinaryIO, inbox: InboxFile) -> bool:
        """Whether the file opens a batch but does not end with its trailer (cheap: first and last bytes)."""
        head = reader.read(_PEEK)
        reader.seek(max(0, inbox.size - _PEEK))
        tail = reader.read(_PEEK)
        reader.seek(0)
        return looks_truncated(head, tail)

    def _old_enough(self, path: Path, inbox: InboxFile) -> bool:
        """A cut-looking file is handled once unchanged for ``incomplete_after`` seconds (logged once)."""
        if not inbox.changed() and time.time() - inbox.mtime_ns / 1e9 >= self.settings.incomplete_after:
            self._waiting.pop(path.name, None)
            return True
        if self._waiting.get(path.name) != inbox.mtime_ns:
            self._waiting[path.name] = inbox.mtime_ns
            log.info("hl7_file.incomplete_waiting", adapter=self.name, file=file_ref(path),
                     seconds=self.settings.incomplete_after)
        return False

    def _may_finish(self, path: Path, inbox: InboxFile, res: RunResult) -> bool:
        """The last group goes out unless the file changed while it was read, or looks cut and is young."""
        if inbox.changed():
            log.info("hl7_file.changed_while_read", adapter=self.name, file=file_ref(path))
            return False
        return not res.truncated or self._old_enough(path, inbox)

    def _archive(self, path: Path, res: RunResult) -> None:
        target = move_to_archive(path, self.settings)
        reason = res.reason_text()
        if reason:
            write_reason(target, safe_reason_lines(reason))
        log.info("hl7_file.archived", adapter=self.name, file=file_ref(path), messages=res.messages,
                 rejected=res.rejected_total, file_problems=len(res.file_problems))

    def _to_error(self, path: Path, reason: str) -> None:
        try:
            move_to_error(path, self.settings, safe_reason(reason))
        except FileNotFoundError:
            return
        log.warning("hl7_file.error", adapter=self.name, file=file_ref(path), reason=reason.split(":", 1)[0])


def safe_reason_lines(text: str) -> str:
    """:func:`engine.redact.safe_reason` line by line (a ``.reason`` file lists one position per line)."""
    return "\n".join(safe_reason(line) for line in text.splitlines())


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> Hl7FileAdapter:
    return Hl7FileAdapter(name, settings, runtime)


__all__ = ["Hl7FileAdapter", "Settings", "build"]
