"""KITH file adapter: KITH / e-helse XML documents dropped in a directory, answered with AppRec 1.1.

Supports standalone ``Message`` documents (Svarrapport, Rekvisisjon, Epikrise, Henvisning 1.x), ``MsgHead``
v1.2 and MsgHead inside a receiver's wrapper (NAV ``EI_fellesformat``), ISO-8859-1 or UTF-8 with or
without BOM/declaration. Config example::

    adapters:
      kith-inbox:
        type: kith-file
        mapping: kith
        directory: /srv/enjournal/in/kith
        outbox: /srv/enjournal/out/apprec     # AppRec receipts (must not be the input directory)
        validate_xsd: true                    # schemas shipped in adapters/kith/schemas (or xsd_dir)
        sender_her_id: "12345"                # our identity when the message does not name its receiver

For each stable file (never one still being written): read the bytes, run the checks of
:func:`adapters.kith.inspect`, publish one envelope (``content_type="application/xml; kith"``,
attributes ``file``, ``shape``, ``msg_type``, ``msg_id``, and ``reject`` = ``CODE: text`` when the
document is rejected; the worker dead-letters those without mapping) — the stable files of one poll
go out together, up to ``max_batch`` per publish, so one confirm covers them all — and **only after
the broker confirmed** write the AppRec to the outbox and move the file to ``archive/`` (accepted) or ``error/``
with a ``.reason`` file (rejected). If the bus is down the file stays and is retried at the next poll,
with no receipt. A received AppRec is published and archived but never answered. A file larger than
``max_file_bytes`` is not read: it gets an AppRec status 2 and moves to ``error/`` without a publish.
Any other failure (outbox not writable, a move that fails) leaves the file in place; the next poll
publishes it again, which the journal absorbs (same record keys), and then writes the receipt.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Literal

import structlog
from pydantic import Field

from adapters.base import AdapterRuntime
from adapters.files import FileDropSettings, move_to_archive, move_to_error, poll_batches
from adapters.kith import Inspection, inspect
from adapters.kith.apprec import Original, Party, Status, Unit, as_datetime, build_apprec, write_apprec
from adapters.kith.xsd import SchemaSet
from engine.envelope import Envelope
from engine.errors import BusUnavailable, ConfigError

log = structlog.get_logger(__name__)
CONTENT_TYPE = "application/xml; kith"


class Settings(FileDropSettings):
    type: Literal["kith-file"] = "kith-file"
    mapping: str = "kith"
    outbox: Path
    validate_xsd: bool = False
    xsd_dir: Path | None = None  # default: adapters/kith/schemas
    max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)  # parse limit; larger is rejected (KITH_TOO_LARGE)
    max_batch: int = Field(default=200, ge=1, le=5000)  # files published per confirmed batch
    sender_her_id: str | None = None  # our identity, when the message names no receiver
    sender_name: str | None = None
    receiver_her_id: str | None = None  # the partner's identity, when the message names no sender
    receiver_name: str | None = None


class KithFileAdapter:
    def __init__(self, name: str, settings: Settings, runtime: AdapterRuntime) -> None:
        self.name = name
        self.settings = settings
        self.runtime = runtime

    @cached_property
    def schemas(self) -> SchemaSet | None:
        """Compiled once per adapter, on first use."""
        return SchemaSet(self.settings.xsd_dir) if self.settings.validate_xsd else None

    def check(self) -> None:
        s = self.settings
        if s.outbox.resolve() == s.directory.resolve():
            raise ConfigError(f"adapter {self.name!r}: outbox must not be the input directory")
        try:
            s.ensure_dirs()
            s.outbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"adapter {self.name!r}: cannot create directories ({exc.strerror})") from None
        _ = self.schemas

    def run(self, stop: threading.Event) -> None:
        log.info("kith.started", adapter=self.name, xsd=self.settings.validate_xsd)
        poll_batches(stop, self.settings, self.handle_batch, max_batch=self.settings.max_batch)
        log.info("kith.stopped", adapter=self.name)

    def handle(self, path: Path) -> None:
        """Handle one stable file; never raises (one bad file never stops the loop)."""
        self.handle_batch([path])

    def handle_batch(self, paths: list[Path]) -> None:
        """Check each file, publish all of them in one confirmed batch, then answer and move each.

        Never raises: a file that fails stays where it is and is retried at the next poll."""
        ready: list[tuple[Path, Inspection, Envelope, datetime]] = []
        for path in paths:
            item = self._prepare(path)
            if item is not None:
                ready.append(item)
        if not ready:
            return
        try:
            self.runtime.bus.publish([env for _p, _i, env, _t in ready])
        except BusUnavailable as exc:
            log.warning("kith.publish_failed", adapter=self.name, files=len(ready), code=exc.code)
            return
        for path, ins, env, received_at in ready:
            try:
                if not ins.is_receipt:
                    self._answer(path, ins, env.id, received_at)
                self._move(path, ins, env.id)
            except Exception as exc:  # noqa: BLE001 - published: the next poll publishes again (idempotent)
                log.error("kith.finish_failed", adapter=self.name, file=path.name, error=type(exc).__name__)

    def _prepare(self, path: Path) -> tuple[Path, Inspection, Envelope, datetime] | None:
        try:
            if path.stat().st_size > self.settings.max_file_bytes:
                self._oversize(path)
                return None
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - the file stays and is retried at the next poll
            log.error("kith.handle_failed", adapter=self.name, file=path.name, error=type(exc).__name__)
            return None
        received_at = datetime.now(UTC)
        try:
            ins = inspect(raw, max_bytes=self.settings.max_bytes, schemas=self.schemas)
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the loop; the file is still answered
            log.error("kith.inspect_failed", adapter=self.name, file=path.name, error=type(exc).__name__)
            ins = Inspection(reject_code="KITH_INTERNAL", reject_text="the adapter could not check the document")
        env = self._envelope(path, raw, ins, received_at)
        log.info("kith.received", adapter=self.name, envelope_id=env.id, file=path.name, msg_id=ins.msg_id,
                 shape=ins.shape, msg_type=ins.msg_type, reject=ins.reject_code, xsd=ins.xsd)
        return path, ins, env, received_at

    def _envelope(self, path: Path, raw: bytes, ins: Inspection, received_at: datetime) -> Envelope:
        attrs = {"file": path.name, "shape": ins.shape}
        attrs.update({k: v for k, v in (("msg_type", ins.msg_type), ("msg_id", ins.msg_id)) if v})
        if ins.reject:
            attrs["reject"] = ins.reject
        sender_id = ins.sender.inst.id or self.settings.receiver_her_id or "-"
        return Envelope.build(
            raw, adapter=self.name, mapping=self.settings.mapping, content_type=CONTENT_TYPE,
            source_system=self.settings.source_system, received_at=received_at, attributes=attrs,
            dedup_key=f"KITH|{sender_id}|{ins.msg_id}" if ins.msg_id and not ins.reject else None,
        )

    def _status(self, ins: Inspection) -> Status:
        if ins.reject_code:
            return Status.REJECTED
        return Status.PARTIAL if ins.part_errors else Status.OK

    def _answer(self, path: Path, ins: Inspection, envelope_id: str, received_at: datetime) -> None:
        status = self._status(ins)
        original = Original(msg_type=ins.msg_type or "UKJENT", msg_type_dn=ins.msg_type_dn,
                            id=ins.msg_id or path.stem, issue_date=as_datetime(ins.issue_date, received_at))
        apprec_id, data = build_apprec(
            status=status, original=original, errors=ins.apprec_errors(), gen_date=datetime.now(UTC),
            sender=self._fill(ins.receiver, self.settings.sender_her_id, self.settings.sender_name),
            receiver=self._fill(ins.sender, self.settings.receiver_her_id, self.settings.receiver_name),
        )
        target = write_apprec(self.settings.outbox, original.id, apprec_id, data)
        log.info("kith.apprec_written", adapter=self.name, envelope_id=envelope_id, file=path.name,
                 msg_id=ins.msg_id, apprec_id=apprec_id, status=int(status), receipt=target.name)

    @staticmethod
    def _fill(party: Party, her_id: str | None, name: str | None) -> Party:
        if not party.empty or not (her_id or name):
            return party
        return Party(Unit(name=name, id=her_id, id_type="HER" if her_id else None, id_type_dn="HER-id"))

    def _move(self, path: Path, ins: Inspection, envelope_id: str) -> None:
        if ins.reject:
            target = move_to_error(path, self.settings, ins.reject)
            log.info("kith.rejected", adapter=self.name, envelope_id=envelope_id, file=path.name,
                     code=ins.reject_code, moved_to=target.name)
        else:
            target = move_to_archive(path, self.settings)
            log.info("kith.archived", adapter=self.name, envelope_id=envelope_id, file=path.name,
                     moved_to=target.name, failed_parts=len(ins.part_errors))

    def _oversize(self, path: Path) -> None:
        """Too large to read or publish: answer status 2 and park it in error/ (nothing is deleted)."""
        reason = f"KITH_TOO_LARGE: file exceeds max_file_bytes={self.settings.max_file_bytes}"
        ins = Inspection(reject_code="KITH_TOO_LARGE", reject_text=reason.split(": ", 1)[1])
        received_at = datetime.now(UTC)
        self._answer(path, ins, "-", received_at)
        self._move(path, ins, "-")


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> KithFileAdapter:
    return KithFileAdapter(name, settings, runtime)


__all__ = ["KithFileAdapter", "Settings", "build"]
