"""The KITH file adapter: stable files read, checked and published in batches; after the confirm each
file's AppRec is written and the file moved (see :mod:`adapters.kith_file`)."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import structlog

from adapters.base import AdapterRuntime
from adapters.durable import DurableWriter
from adapters.files import InboxFile, Signature, lstat_signature, move_to_archive, move_to_error
from adapters.handoff import Handoff
from adapters.inbox import Availability, Inbox, Unfinished
from adapters.kith_file.apprec import Original, Party, Status, Unit, as_datetime, build_apprec, receipt_name
from adapters.kith_file.inspection import Inspection, inspect
from adapters.kith_file.options import KithFileOptions
from adapters.kith_file.xsd import SchemaSet
from engine.envelope import Envelope
from engine.errors import ConfigError
from engine.redact import file_ref

log = structlog.get_logger(__name__)
CONTENT_TYPE = "application/xml; kith"
#: reject codes of a document that may only be cut short (its writer still at work)
INCOMPLETE = frozenset({"KITH_NOT_WELL_FORMED", "KITH_EMPTY"})


@dataclass(frozen=True)
class _Ready:
    """A file read and checked, made into an envelope (None: answered without a publish, too large)."""

    path: Path
    ins: Inspection
    envelope: Envelope | None
    received_at: datetime
    signature: Signature  # (inode, size, mtime) of what was read


@dataclass(frozen=True)
class _Receipt:
    target: Path
    data: bytes
    apprec_id: str
    status: Status


@dataclass
class _Pending:
    """A file whose envelope is confirmed (or that needs none) and whose receipt or move is not done.
    It is never published again while it is remembered; a retry writes the same AppRec."""

    ready: _Ready
    receipt: _Receipt | None = None
    receipt_done: bool = False

    @property
    def needs_receipt(self) -> bool:
        return not self.ready.ins.is_receipt and not self.receipt_done


class KithFileAdapter:
    """See :mod:`adapters.kith_file`."""

    def __init__(self, name: str, settings: KithFileOptions, runtime: AdapterRuntime) -> None:
        self.name = name
        self.settings = settings
        self.handoff = Handoff(name, runtime.bus, "kith")
        try:
            self._writer = DurableWriter(sync=settings.receipt_sync)
        except ValueError as exc:
            raise ConfigError(f"adapter {name!r}: receipt_sync: {exc}") from None
        self._unfinished: Unfinished[_Pending] = Unfinished()  # published, receipt or move not done yet
        self.inbox = Inbox(settings, name, unfinished=self._unfinished)
        self._outbox = Availability(name, "outbox", settings.poll_interval)
        self._moves = Availability(name, "archive", settings.poll_interval)

    @cached_property
    def schemas(self) -> SchemaSet | None:
        """Compiled once per adapter, on first use."""
        return SchemaSet(self.settings.xsd_dir) if self.settings.validate_xsd else None

    def check(self) -> None:
        """The outbox is not the inbox, the directories exist or can be created (nothing is created), and the
        schemas compile when ``validate_xsd`` is on."""
        s = self.settings
        if s.outbox.resolve() == s.directory.resolve():
            raise ConfigError(f"adapter {self.name!r}: outbox must not be the input directory")
        s.check_dirs(self.name)
        _ = self.schemas

    def run(self, stop: threading.Event) -> None:
        """Poll; each batch is published here and finished (receipts, moves) by a second thread while
        the next batch is read and published: the receipts' fsyncs and the moves wait on the disk, not
        on the CPU. At most one batch is being finished at a time."""
        log.info("kith.started", adapter=self.name, xsd=self.settings.validate_xsd)
        finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kith-finish")
        pending: list[Future[None]] = []

        def handle(paths: list[Path]) -> None:
            todo = self._publish(paths)
            for f in pending:
                f.result()
            pending.clear()
            if todo:
                pending.append(finisher.submit(self._finish, todo))

        try:
            self.inbox.poll(stop, handle, max_batch=self.settings.max_batch)
        finally:
            finisher.shutdown(wait=True)
            self._writer.close()
        log.info("kith.stopped", adapter=self.name)

    def handle(self, path: Path) -> None:
        """Handle one stable file (one bad file never stops the loop)."""
        self.handle_batch([path])

    def handle_batch(self, paths: list[Path]) -> None:
        """Check each file, publish all of them in one confirmed batch, write all their receipts (one
        concurrent fsync round), then move each file.

        A file that fails stays where it is and is retried at a later poll; raises only
        :class:`adapters.inbox.InboxUnavailable` (no file can be opened: the poll loop backs off)."""
        self._finish(self._publish(paths))

    # -- publish ---------------------------------------------------------------------------------
    def _publish(self, paths: list[Path]) -> list[_Pending]:
        """Read, check and publish the new files in one confirmed batch; with them, the files published
        before whose receipt or move is due for another try. What is to be finished."""
        retry, fresh = self._unfinished.split(paths)
        ready = [item for item in map(self._prepare, fresh) if item is not None]
        envelopes = [r.envelope for r in ready if r.envelope is not None]
        todo = list(retry)

        def confirmed() -> None:
            todo.extend(_Pending(r) for r in ready)

        if not self.handoff.deliver(envelopes, confirmed, files=len(envelopes)):  # the files stay for the next poll
            todo.extend(_Pending(r) for r in ready if r.envelope is None)  # answered without a publish: finished
        for p in todo:  # the finisher thread has them until it releases them
            self._unfinished.remember(p.ready.path, p.ready.signature, p, busy=True)
        return todo

    def _prepare(self, path: Path) -> _Ready | None:
        f = self.inbox.open(path)
        if f is None:
            return None
        with f:
            if f.size > min(self.settings.max_file_bytes, self.settings.max_bytes):
                return self._oversize(f)  # never read, never published whole into the archive
            raw = self._read(f)
        if raw is None:
            return None
        received_at = datetime.now(UTC)
        try:
            ins = inspect(raw, max_bytes=self.settings.max_bytes, schemas=self.schemas)
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the loop; the file is still answered
            log.error("kith.inspect_failed", adapter=self.name, file=file_ref(path.name), error=type(exc).__name__)
            ins = Inspection(reject_code="KITH_INTERNAL", reject_text="the adapter could not check the document")
        if ins.reject_code in INCOMPLETE and self.inbox.still_arriving(f, ins.reject_code):
            return None
        env = self._envelope(path, raw, ins, received_at)
        log.debug("kith.received", adapter=self.name, envelope_id=env.id, file=file_ref(path.name))
        return _Ready(path, ins, env, received_at, f.signature)

    def _read(self, f: InboxFile) -> bytes | None:
        """The file's bytes, or None when it is not what was opened any more (still being written)."""
        try:
            with f.reader() as r:
                raw = r.read(f.size + 1)
        except OSError as exc:
            self.inbox.unreadable(f.path, exc)
            return None
        return raw if len(raw) == f.size else None

    def _envelope(self, path: Path, raw: bytes, ins: Inspection, received_at: datetime) -> Envelope:
        attrs = {"file": path.name, "shape": ins.shape}
        attrs.update(
            {
                k: v
                for k, v in (
                    ("msg_type", ins.msg_type),
                    ("msg_id", ins.msg_id),
                    ("charset_repaired", ins.charset_repaired),
                )
                if v
            }
        )
        sender_id = ins.sender.inst.id or self.settings.receiver_her_id or "-"
        return Envelope.build(
            raw,
            adapter=self.name,
            mapping=self.settings.mapping,
            content_type=CONTENT_TYPE,
            source_system=self.settings.source_system,
            received_at=received_at,
            attributes=attrs,
            dedup_key=f"KITH|{sender_id}|{ins.msg_id}" if ins.msg_id and not ins.reject else None,
            rejection=ins.rejection,
        )

    def _oversize(self, f: InboxFile) -> _Ready:
        """Too large to read or publish: answered with status 2 and parked in error/ (nothing is deleted)."""
        limit = min(self.settings.max_file_bytes, self.settings.max_bytes)
        reason = f"KITH_TOO_LARGE: file of {f.size} bytes exceeds the limit of {limit} (max_bytes / max_file_bytes)"
        ins = Inspection(reject_code="KITH_TOO_LARGE", reject_text=reason.split(": ", 1)[1])
        return _Ready(f.path, ins, None, datetime.now(UTC), f.signature)

    # -- finish: receipts, then moves -------------------------------------------------------------
    def _finish(self, todo: list[_Pending]) -> None:
        """Receipts of a published batch, then each file moved (only after its receipt is durable).
        What fails is remembered and tried again after a backoff, never published again."""
        try:
            self._write_receipts(todo)
            for p in todo:
                if not p.needs_receipt:
                    self._finish_one(p)
        finally:
            self._unfinished.release(p.ready.path for p in todo)

    def _finish_one(self, p: _Pending) -> None:
        path = p.ready.path
        if lstat_signature(path) not in (p.ready.signature, None):  # its writer replaced it after the read:
            self._unfinished.forget(path, p)  # never archived for what was published; read again whole
            log.info("kith.changed_while_read", adapter=self.name, file=file_ref(path.name))
            return
        try:
            self._move(p)
        except FileNotFoundError:
            pass  # taken away meanwhile: nothing left to move
        except OSError as exc:
            self._unfinished.retry_in(path, self._moves.failed(exc, "move"))
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the other files; tried again later
            log.error("kith.finish_failed", adapter=self.name, file=file_ref(path.name), error=type(exc).__name__)
            self._unfinished.retry_in(path, self._moves.cap)
            return
        else:
            self._moves.ok()
        self._unfinished.forget(path, p)
        self.inbox.done(path)

    def _write_receipts(self, todo: list[_Pending]) -> None:
        """Build each missing receipt (once) and write those not yet durable, all in one round."""
        need = [p for p in todo if p.needs_receipt]
        for p in need:
            if p.receipt is None:
                try:
                    p.receipt = self._receipt(p.ready)
                except Exception as exc:  # noqa: BLE001 - a bug must not stop the other files
                    log.error(
                        "kith.finish_failed",
                        adapter=self.name,
                        file=file_ref(p.ready.path.name),
                        error=type(exc).__name__,
                    )
                    self._unfinished.retry_in(p.ready.path, self._outbox.cap)
        built = [p for p in need if p.receipt is not None]
        if not built:
            return
        try:
            self.settings.outbox.mkdir(parents=True, exist_ok=True)
            results = self._writer.write_all([(p.receipt.target, p.receipt.data) for p in built if p.receipt])
        except OSError as exc:
            self._outbox_failed(built, exc, "mkdir")
            return
        failure: OSError | None = None
        for p, result in zip(built, results, strict=True):
            if isinstance(result, OSError):
                failure = result
            else:
                p.receipt_done = True
        if failure is not None:
            self._outbox_failed([p for p in built if not p.receipt_done], failure, "write")
        else:
            self._outbox.ok()

    def _outbox_failed(self, failed: list[_Pending], exc: OSError, op: str) -> None:
        wait = self._outbox.failed(exc, op)
        for p in failed:
            self._unfinished.retry_in(p.ready.path, wait)

    def _status(self, ins: Inspection) -> Status:
        if ins.reject_code:
            return Status.REJECTED
        return Status.PARTIAL if ins.part_errors else Status.OK

    def _receipt(self, r: _Ready) -> _Receipt:
        ins, status = r.ins, self._status(r.ins)
        original = Original(
            msg_type=ins.msg_type or "UKJENT",
            msg_type_dn=ins.msg_type_dn,
            id=ins.msg_id or r.path.stem,
            issue_date=as_datetime(ins.issue_date, r.received_at),
        )
        apprec_id, data = build_apprec(
            status=status,
            original=original,
            errors=ins.apprec_errors(),
            gen_date=datetime.now(UTC),
            sender=self._fill(ins.receiver, self.settings.sender_her_id, self.settings.sender_name),
            receiver=self._fill(ins.sender, self.settings.receiver_her_id, self.settings.receiver_name),
        )
        return _Receipt(self.settings.outbox / receipt_name(original.id, apprec_id), data, apprec_id, status)

    @staticmethod
    def _fill(party: Party, her_id: str | None, name: str | None) -> Party:
        if not party.empty or not (her_id or name):
            return party
        return Party(Unit(name=name, id=her_id, id_type="HER" if her_id else None, id_type_dn="HER-id"))

    def _move(self, p: _Pending) -> None:
        """Move the file and log the one line that says what became of it."""
        r, receipt = p.ready, p.receipt
        what: dict[str, object] = {
            "adapter": self.name,
            "envelope_id": r.envelope.id if r.envelope else "-",
            "file": file_ref(r.path.name),
            "msg_id": r.ins.msg_id,
            "msg_type": r.ins.msg_type,
            "shape": r.ins.shape,
            "xsd": r.ins.xsd,
        }
        if receipt is not None:
            what.update(apprec_id=receipt.apprec_id, status=int(receipt.status), receipt=file_ref(receipt.target.name))
        if r.ins.reject:
            target = move_to_error(r.path, self.settings, r.ins.reject)
            log.info("kith.rejected", **what, code=r.ins.reject_code, moved_to=file_ref(target.name))
        else:
            target = move_to_archive(r.path, self.settings)
            log.info("kith.archived", **what, moved_to=file_ref(target.name), failed_parts=len(r.ins.part_errors))


__all__ = ["KithFileAdapter"]
