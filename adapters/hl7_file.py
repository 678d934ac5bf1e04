"""HL7 v2 file adapter (``type: hl7-file``): files of one or many HL7 v2.1-2.8 messages in a directory.

A file may hold one message, many messages, or FHS/BHS batches; segments end in CR, LF or CRLF;
blank lines and ``//`` comments are ignored (``mappings.hl7v2.parser.split_messages``). Config::

    adapters:
      lab-files:
        type: hl7-file
        directory: /srv/enjournal/in/lab
        pattern: "*.hl7"
        mapping: hl7v2
        source_system: lab
        default_charset: iso-8859-1   # when MSH-18 is empty
        accepted_types: [ADT, ORU, MDM]

For each stable file (never one still being written):

* every message is triaged like an MLLP message (:mod:`adapters.mllp.triage`: MSH readable, type
  accepted, optional strict check) and becomes one envelope (``content_type="application/hl7-v2"``,
  charset from MSH-18, ``dedup_key`` ``HL7|MSH-3|MSH-4|MSH-10``, attributes ``file``, ``index``
  (0-based position in the file) and ``count``); a bad message carries ``reject = "CODE: text"`` and
  is dead-lettered by the worker while the good ones go through; the worker records each
  ``dedup_key`` with its records (so an MLLP resend of the same message is known), the adapter
  writes nothing to the store itself;
* all envelopes of the file go in one ``bus.publish`` call; only after it returned (every one
  confirmed) does the file move to ``archive/``, with a ``.reason`` file listing the rejected
  positions and codes (never content) when there were any;
* a file with no message at all, or larger than ``max_file_bytes``, moves to ``error/`` with a
  ``.reason`` file; if the bus is unavailable the file stays and is tried again at the next poll.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import structlog

from adapters.base import AdapterRuntime
from adapters.files import FileDropSettings, move_to_archive, move_to_error, poll_loop, write_reason
from adapters.mllp.triage import Hl7Options, Triage, load_strict, triage
from engine import metrics
from engine.errors import BusUnavailable, ConfigError, ParseError
from mappings.hl7v2.parser import split_messages

log = structlog.get_logger(__name__)


class Settings(FileDropSettings, Hl7Options):
    type: Literal["hl7-file"] = "hl7-file"


class Hl7FileAdapter:
    def __init__(self, name: str, settings: Settings, runtime: AdapterRuntime) -> None:
        self.name, self.settings, self.runtime = name, settings, runtime
        self._strict = load_strict(settings)

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
            size = path.stat().st_size
            if size > self.settings.max_file_bytes:
                self._to_error(path, f"HL7_FILE_TOO_LARGE: {size} bytes > max_file_bytes")
                return
            self._handle(path, path.read_bytes())
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("hl7_file.io_failed", adapter=self.name, file=path.name, error=type(exc).__name__)

    def _handle(self, path: Path, raw: bytes) -> None:
        try:
            messages = split_messages(raw)
        except ParseError as exc:
            self._to_error(path, exc.reason)
            return
        triaged = self._triage(path, messages)
        try:
            # one call for the whole file; a big file gets more time for its confirms
            self.runtime.bus.publish([t.envelope for t in triaged], timeout=30.0 + len(triaged) / 500)
        except BusUnavailable as exc:
            log.warning("hl7_file.publish_failed", adapter=self.name, file=path.name, code=exc.code)
            return
        metrics.published(t.envelope for t in triaged)
        self._archive(path, triaged)

    def _triage(self, path: Path, messages: list[bytes]) -> list[Triage]:
        n = str(len(messages))
        return [
            triage(m, adapter=self.name, options=self.settings, source_system=self.settings.source_system,
                   attributes={"file": path.name, "index": str(i), "count": n}, strict=self._strict)
            for i, m in enumerate(messages)
        ]

    def _archive(self, path: Path, triaged: list[Triage]) -> None:
        target = move_to_archive(path, self.settings)
        rejected = [(i, t.error) for i, t in enumerate(triaged) if t.error is not None]
        if rejected:
            write_reason(target, "\n".join(f"message {i}: {e.reason}" for i, e in rejected))
        log.info("hl7_file.archived", adapter=self.name, file=path.name, messages=len(triaged),
                 rejected=len(rejected))

    def _to_error(self, path: Path, reason: str) -> None:
        move_to_error(path, self.settings, reason)
        log.warning("hl7_file.error", adapter=self.name, file=path.name, reason=reason.split(":", 1)[0])


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> Hl7FileAdapter:
    return Hl7FileAdapter(name, settings, runtime)


__all__ = ["Hl7FileAdapter", "Settings", "build"]
