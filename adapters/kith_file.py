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
        receipt_sync: auto                    # auto | syncfs | fsync: how a batch's AppRecs are made durable
        sender_her_id: "12345"                # our identity when the message does not name its receiver

For each stable file (never one still being written): read the bytes, run the checks of
:func:`adapters.kith.inspect`, publish one envelope (``content_type="application/xml; kith"``,
attributes ``file``, ``shape``, ``msg_type``, ``msg_id``, and ``reject`` = ``CODE: text`` when the
document is rejected; the worker dead-letters those without mapping) — the stable files of one poll
go out together, up to ``max_batch`` per publish, so one confirm covers them all — and **only after
the broker confirmed** write the AppRecs to the outbox (all receipts of a batch are fsynced together,
see :mod:`adapters.durable`) and move the file to ``archive/`` (accepted) or ``error/``
with a ``.reason`` file (rejected). If the bus is down the file stays and is retried at the next poll,
with no receipt. A received AppRec is published and archived but never answered. A file larger than
``max_file_bytes`` is not read: it gets an AppRec status 2 and moves to ``error/`` without a publish.
Any other failure (outbox not writable, a move that fails) leaves the file in place; the next poll
publishes it again, which the journal absorbs (same record keys), and then writes the receipt.
One log line per file says what became of it (``kith.archived`` or ``kith.rejected``, with the receipt).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Literal

import structlog
from pydantic import Field

from adapters.base import AdapterRuntime
from adapters.durable import DurableWriter, Sync, write_file
from adapters.files import FileDropSettings, move_to_archive, move_to_error, poll_batches
from adapters.kith import Inspection, inspect
from adapters.kith.apprec import Original, Party, Status, Unit, as_datetime, build_apprec
from adapters.kith.apprec import receipt_name
from adapters.kith.xsd import SchemaSet
from engine import metrics
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
    #: how a batch's receipts are made durable (adapters.durable): one syncfs of the outbox's filesystem
    #: (auto on Linux >= 5.8), or an fsync per file by a thread pool (when the outbox shares a filesystem
    #: with a busy database, whose dirty pages a syncfs would wait for too)
    receipt_sync: Sync = Sync.AUTO
    sender_her_id: str | None = None  # our identity, when the message names no receiver
    sender_name: str | None = None
    receiver_her_id: str | None = None  # the partner's identity, when the message names no sender
    receiver_name: str | None = None


@dataclass(frozen=True)
class _Ready:
    """A file read, checked and made into an envelope."""

    path: Path
    ins: Inspection
    envelope: Envelope
    received_at: datetime


@dataclass(frozen=True)
class _Receipt:
    target: Path
    data: bytes
    apprec_id: str
    status: Status


class KithFileAdapter:
    def __init__(self, name: str, settings: Settings, runtime: AdapterRuntime) -> None:
        self.name = name
        self.settings = settings
        self.runtime = runtime
        try:
            self._writer = DurableWriter(sync=settings.receipt_sync)
        except ValueError as exc:
            raise ConfigError(f"adapter {name!r}: receipt_sync: {exc}") from None
        self._lock = threading.Lock()
        self._finishing: set[Path] = set()  # published, receipt or move not done yet

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
        """Poll; each batch is published here and finished (receipts, moves) by a second thread while
        the next batch is read and published: the receipts' fsyncs and the moves wait on the disk, not
        on the CPU. At most one batch is being finished at a time."""
        log.info("kith.started", adapter=self.name, xsd=self.settings.validate_xsd)
        finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kith-finish")
        pending: list[Future[None]] = []

        def handle(paths: list[Path]) -> None:
            ready = self._publish(paths)
            for f in pending:
                f.result()
            pending.clear()
            if ready:
                pending.append(finisher.submit(self._finish, ready))

        try:
            poll_batches(stop, self.settings, handle, max_batch=self.settings.max_batch)
        finally:
            finisher.shutdown(wait=True)
            self._writer.close()
        log.info("kith.stopped", adapter=self.name)

    def handle(self, path: Path) -> None:
        """Handle one stable file; never raises (one bad file never stops the loop)."""
        self.handle_batch([path])

    def handle_batch(self, paths: list[Path]) -> None:
        """Check each file, publish all of them in one confirmed batch, write all their receipts (one
        concurrent fsync round), then move each file.

        Never raises: a file that fails stays where it is and is retried at the next poll."""
        self._finish(self._publish(paths))

    def _publish(self, paths: list[Path]) -> list[_Ready]:
        """Read and check the files (skipping those still being finished) and publish them in one
        confirmed batch; what was published, or nothing if the bus is unavailable."""
        with self._lock:
            paths = [p for p in paths if p not in self._finishing]
        ready = [item for item in map(self._prepare, paths) if item is not None]
        if not ready:
            return []
        try:
            self.runtime.bus.publish([r.envelope for r in ready])
        except BusUnavailable as exc:
            log.warning("kith.publish_failed", adapter=self.name, files=len(ready), code=exc.code)
            return []
        metrics.published(r.envelope for r in ready)
        with self._lock:
            self._finishing.update(r.path for r in ready)
        return ready

    def _finish(self, ready: list[_Ready]) -> None:
        """Receipts of a published batch, then each file moved (only after its receipt is durable)."""
        try:
            receipts = self._write_receipts(ready)
            for i, r in enumerate(ready):
                receipt = receipts.get(i)
                if not r.ins.is_receipt and receipt is None:
                    continue  # no receipt written: the file stays and is published again at the next poll
                try:
                    self._move(r.path, r.ins, r.envelope.id, receipt)
                except Exception as exc:  # noqa: BLE001 - published: the next poll publishes again (idempotent)
                    log.error("kith.finish_failed", adapter=self.name, file=r.path.name, error=type(exc).__name__)
        finally:
            with self._lock:
                self._finishing.difference_update(r.path for r in ready)

    def _write_receipts(self, ready: list[_Ready]) -> dict[int, _Receipt]:
        """The receipts that are durably in the outbox, by position in ``ready``."""
        built: dict[int, _Receipt] = {}
        for i, r in enumerate(ready):
            if r.ins.is_receipt:
                continue
            try:
                built[i] = self._receipt(r.path, r.ins, r.received_at)
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the other files
                log.error("kith.finish_failed", adapter=self.name, file=r.path.name, error=type(exc).__name__)
        if not built:
            return {}
        try:
            self.settings.outbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.error("kith.finish_failed", adapter=self.name, files=len(built), error=type(exc).__name__)
            return {}
        written = self._writer.write_all([(r.target, r.data) for r in built.values()])
        out: dict[int, _Receipt] = {}
        for (i, receipt), result in zip(built.items(), written):
            if isinstance(result, OSError):
                log.error("kith.finish_failed", adapter=self.name, file=ready[i].path.name, error=type(result).__name__)
            else:
                out[i] = receipt
        return out

    def _prepare(self, path: Path) -> _Ready | None:
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
        log.debug("kith.received", adapter=self.name, envelope_id=env.id, file=path.name)
        return _Ready(path, ins, env, received_at)

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

    def _receipt(self, path: Path, ins: Inspection, received_at: datetime) -> _Receipt:
        status = self._status(ins)
        original = Original(msg_type=ins.msg_type or "UKJENT", msg_type_dn=ins.msg_type_dn,
                            id=ins.msg_id or path.stem, issue_date=as_datetime(ins.issue_date, received_at))
        apprec_id, data = build_apprec(
            status=status, original=original, errors=ins.apprec_errors(), gen_date=datetime.now(UTC),
            sender=self._fill(ins.receiver, self.settings.sender_her_id, self.settings.sender_name),
            receiver=self._fill(ins.sender, self.settings.receiver_her_id, self.settings.receiver_name),
        )
        return _Receipt(self.settings.outbox / receipt_name(original.id, apprec_id), data, apprec_id, status)

    @staticmethod
    def _fill(party: Party, her_id: str | None, name: str | None) -> Party:
        if not party.empty or not (her_id or name):
            return party
        return Party(Unit(name=name, id=her_id, id_type="HER" if her_id else None, id_type_dn="HER-id"))

    def _move(self, path: Path, ins: Inspection, envelope_id: str, receipt: _Receipt | None) -> None:
        """Move the file and log the one line that says what became of it."""
        what = {"adapter": self.name, "envelope_id": envelope_id, "file": path.name, "msg_id": ins.msg_id,
                "msg_type": ins.msg_type, "shape": ins.shape, "xsd": ins.xsd}
        if receipt is not None:
            what.update(apprec_id=receipt.apprec_id, status=int(receipt.status), receipt=receipt.target.name)
        if ins.reject:
            target = move_to_error(path, self.settings, ins.reject)
            log.info("kith.rejected", **what, code=ins.reject_code, moved_to=target.name)
        else:
            target = move_to_archive(path, self.settings)
            log.info("kith.archived", **what, moved_to=target.name, failed_parts=len(ins.part_errors))

    def _oversize(self, path: Path) -> None:
        """Too large to read or publish: answer status 2 and park it in error/ (nothing is deleted)."""
        reason = f"KITH_TOO_LARGE: file exceeds max_file_bytes={self.settings.max_file_bytes}"
        ins = Inspection(reject_code="KITH_TOO_LARGE", reject_text=reason.split(": ", 1)[1])
        receipt = self._receipt(path, ins, datetime.now(UTC))
        self.settings.outbox.mkdir(parents=True, exist_ok=True)
        write_file(receipt.target, receipt.data)
        self._move(path, ins, "-", receipt)


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> KithFileAdapter:
    return KithFileAdapter(name, settings, runtime)


__all__ = ["KithFileAdapter", "Settings", "build"]
