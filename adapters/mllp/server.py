"""One MLLP connection: read frames, submit them, answer in order, stop gracefully.

Each connection reads frames (:mod:`adapters.mllp.framing`), triages every message
(:mod:`adapters.hl7_intake.triage`) and submits it to the shared :class:`~adapters.mllp.publisher.Publisher`.
A writer task answers the frames strictly in arrival order (pipelining), each only when its publish is
confirmed; with ``ack_after: commit`` an accepted message is answered only once a worker committed it
(AA) or dead-lettered it (AE with an ERR segment carrying the reason code), looked up by the listener's
:class:`~adapters.mllp.commits.CommitWatch`. When a publish fails for good, or no commit comes within
``commit_timeout``, the connection is closed without an answer for that frame or any later one: the
sender resends, and the duplicate check answers the resend with the original's outcome.

Enhanced mode (MSH-15/MSH-16 present): the accept ACK (CA/CE/CR, as MSH-15 asks) is sent after the
confirm (``ack_after: commit``: after the commit, CA also for a message the mapping rejected, which is
archived and dead-lettered: safely stored), in arrival order. The application ACK (AA/AE/AR, as MSH-16
asks: AL always, ER only on an error, SU only on success, NE or empty never) reflects the mapping's
outcome: for an accepted message it is sent once the commit outcome is known, as a message of its own,
after the message's accept ACK and after the application ACKs of earlier messages (its accept ACK does
not wait for it). Without a commit within ``commit_timeout`` no application ACK is sent for it
(``mllp.app_ack_uncommitted``): the accept ACK already told the sender the message is safe.

Protection: an oversize frame is answered AR (``MLLP_FRAME_TOO_LARGE``) from its first bytes and the
stream resynchronises on the next frame; garbage between frames is skipped (counted, never logged). A
connection that sends nothing for ``idle_timeout`` seconds is closed: between frames once nothing is
outstanding, and within a frame at once (a frame open longer than ``frame_timeout`` too); what was
complete is still answered, and the partial frame's buffer is released (and the heap trimmed:
:mod:`adapters.mllp.memory`). A connection holds at most
``max_buffered_bytes`` of frames read but not yet answered (reading pauses beyond it; a single frame up to
``max_message_bytes`` is always read). On stop the connection stops reading, and every frame already
read is published and answered before it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from adapters.hl7_intake.ack import (
    FALLBACK,
    AckError,
    accept_codes,
    app_ack_wanted,
    build_ack,
    is_enhanced,
    salvage_header,
)
from adapters.hl7_intake.options import StrictCheck
from adapters.hl7_intake.triage import Triage, triage
from adapters.mllp.commits import CommitWatch
from adapters.mllp.framing import Frame, FrameDecoder, Garbage, Oversize, encode
from adapters.mllp.options import MllpOptions
from adapters.mllp.publisher import Publisher, Receipt
from engine import metrics
from mappings.hl7v2.parser import MshHeader

log = structlog.get_logger("adapters.mllp")
READ_CHUNK = 256 * 1024
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")


@dataclass(slots=True)
class Answer:
    """One frame's place in the connection's answer order."""

    head: MshHeader
    future: asyncio.Future[Receipt] | None  # None: answer ``code`` at once (nothing to publish)
    code: str = "AA"  # what the listener itself decided (AA accepted; AE/AR rejected)
    error: AckError | None = None
    size: int = 0  # bytes held for it until it is answered
    outcome: asyncio.Future[str | None] | None = None  # the commit outcome, when the answer needs it

    @property
    def accepted(self) -> bool:
        return self.code == "AA" and self.error is None


def _retrieve(f: asyncio.Future[Any]) -> None:
    if not f.cancelled():
        f.exception()  # nobody will answer it: keep asyncio from reporting it as unretrieved


def _cancelling() -> bool:
    """Whether the running task itself was asked to stop (not only something it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _ended(fut: asyncio.Future[Any]) -> None:
    """Wait until ``fut`` ended; its cancellation is its own, only the running task's propagates."""
    try:
        await fut
    except asyncio.CancelledError:
        if _cancelling():
            raise


def _mapping_error(reason_code: str) -> AckError:
    """The ERR of a message the mapping rejected: its reason code only (never a value)."""
    return AckError(reason_code if _CODE.match(reason_code) else "MAPPING_REJECTED", "rejected when mapped")


class Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        name: str,
        settings: MllpOptions,
        publisher: Publisher,
        commits: CommitWatch,
        strict: StrictCheck | None,
        released: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.name, self.settings, self.publisher, self.strict = name, settings, publisher, strict
        self.commits, self.released = commits, released  # released: told the bytes of a dropped partial frame
        self.decoder = FrameDecoder(settings.max_message_bytes)
        self.answers: asyncio.Queue[Answer | None] = asyncio.Queue()
        self.slots = asyncio.Semaphore(settings.max_pending_per_connection)
        self.outstanding = 0
        self.held_bytes = 0  # bytes of frames read and not yet answered
        self._room = asyncio.Event()
        self.frames = 0
        peer = writer.get_extra_info("peername")
        self.peer = {"peer": str(peer[0])} if isinstance(peer, tuple) and peer else {}
        self._reading: asyncio.Task[None] | None = None
        self._frame_started: float | None = None
        self._app_tail: asyncio.Future[None] | None = None

    @property
    def buffered(self) -> int:
        """Bytes this connection holds: its partial frame and the frames waiting for their answer."""
        return self.decoder.buffered + self.held_bytes

    def stop_reading(self) -> None:
        if self._reading is not None:
            self._reading.cancel()

    async def serve(self) -> None:
        log.info("mllp.connection_opened", adapter=self.name, **self.peer)
        writing = asyncio.create_task(self._write_loop())
        self._reading = asyncio.create_task(self._read_loop())
        try:
            await self._reading
        except asyncio.CancelledError:
            if _cancelling():  # the connection is cancelled, not only its reading (stop_reading)
                writing.cancel()
                raise
        except (ConnectionError, OSError):
            pass  # the peer went away; what was read is still published
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the connection half open
            log.error("mllp.connection_failed", adapter=self.name, error=type(exc).__name__)
        self.released(self.decoder.buffered)
        self.decoder.clear()  # a partial frame is never completed now: release its bytes at once
        self.answers.put_nowait(None)
        await writing
        await self._close()
        log.info("mllp.connection_closed", adapter=self.name, frames=self.frames, **self.peer)

    # -- reading ---------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        while True:
            while self.outstanding and self.buffered > self.settings.max_buffered_bytes:
                self._room.clear()  # full: wait for answers (the sender's TCP window pushes back)
                await self._room.wait()
            try:
                async with asyncio.timeout(self._read_timeout()):  # no task per read, as wait_for makes
                    data = await self.reader.read(READ_CHUNK)
            except TimeoutError:
                if self.decoder.in_frame:  # a frame left open: idle within it, or too slow as a whole
                    late = self._frame_started is not None and self._read_timeout() <= 0
                    log.info(
                        "mllp.frame_timeout" if late else "mllp.idle_timeout",
                        adapter=self.name,
                        mid_frame=True,
                        bytes=self.decoder.buffered,
                    )
                    return
                if self.outstanding:
                    continue
                log.info("mllp.idle_timeout", adapter=self.name, mid_frame=False)
                return
            if not data:
                return
            for event in self.decoder.feed(data):
                await self._on_event(event)
            self._frame_clock()

    def _read_timeout(self) -> float:
        """``idle_timeout``; within a frame no later than ``frame_timeout`` after the frame's first byte."""
        if self._frame_started is None:
            return self.settings.idle_timeout
        left = self._frame_started + self.settings.frame_timeout - time.monotonic()
        return max(0.0, min(self.settings.idle_timeout, left))

    def _frame_clock(self) -> None:
        if not self.decoder.in_frame:
            self._frame_started = None
        elif self._frame_started is None:
            self._frame_started = time.monotonic()

    async def _on_event(self, event: Frame | Oversize | Garbage) -> None:
        if isinstance(event, Garbage):
            log.warning("mllp.garbage_skipped", adapter=self.name, bytes=event.size)
            return
        self._frame_started = None  # a frame ended; the next one starts its own clock
        await self.slots.acquire()
        self.outstanding += 1
        self.frames += 1
        if isinstance(event, Oversize):
            log.warning("mllp.frame_too_large", adapter=self.name, bytes=event.size)
            err = AckError("MLLP_FRAME_TOO_LARGE", f"frame exceeds {self.settings.max_message_bytes} bytes")
            self.answers.put_nowait(Answer(salvage_header(event.head), None, "AR", err))
            return
        self.held_bytes += len(event.payload)
        if self.strict is None:
            t = self._triage(event.payload)
            answer = Answer(t.head, None, t.code, t.error, len(event.payload))
            receipt = self.publisher.submit(t)
            # an answer that waits for the commit starts waiting from the confirm on, not from its turn
            answer.future = (
                asyncio.ensure_future(self._confirmed(answer, receipt)) if self._watches(answer) else receipt
            )
        else:  # strict validation is slow: off the loop
            answer = Answer(FALLBACK, None, size=len(event.payload))
            answer.future = asyncio.ensure_future(self._triage_off_loop(event.payload, answer))
        self.answers.put_nowait(answer)

    def _triage(self, raw: bytes) -> Triage:
        t = triage(
            raw,
            adapter=self.name,
            options=self.settings,
            source_system=self.settings.source_system,
            attributes=dict(self.peer),
            strict=self.strict,
        )
        if t.error is not None:
            log.info("mllp.rejected", adapter=self.name, envelope=t.envelope.id, code=t.error.code)
        return t

    async def _triage_off_loop(self, raw: bytes, answer: Answer) -> Receipt:
        t = await asyncio.get_running_loop().run_in_executor(None, self._triage, raw)
        answer.head, answer.code, answer.error = t.head, t.code, t.error
        receipt = self.publisher.submit(t)
        return await self._confirmed(answer, receipt) if self._watches(answer) else await receipt

    # -- commit outcomes -------------------------------------------------------------------
    def _watches(self, answer: Answer) -> bool:
        """Whether ``answer`` waits for its message's commit outcome (accepted messages only)."""
        if not answer.accepted:
            return False
        return self.settings.ack_after == "commit" or (is_enhanced(answer.head) and app_ack_wanted(answer.head))

    async def _confirmed(self, answer: Answer, receipt: asyncio.Future[Receipt]) -> Receipt:
        """The confirm's receipt, once the wait for the commit of the envelope that decides ``answer`` started
        (the one place it starts)."""
        r = await receipt
        answer.outcome = asyncio.ensure_future(self.commits.outcome(r.envelope_id, self.settings.commit_timeout))
        answer.outcome.add_done_callback(_retrieve)
        return r

    async def _outcome(self, answer: Answer) -> tuple[str, AckError | None]:
        """AA when the message was mapped, AE with its reason code when it was dead-lettered."""
        assert answer.outcome is not None
        reason = await answer.outcome
        return ("AA", None) if reason is None else ("AE", _mapping_error(reason))

    # -- writing ---------------------------------------------------------------------------
    async def _write_loop(self) -> None:
        broken = False
        while (item := await self.answers.get()) is not None:
            if broken:
                self._abandon(item)
            elif not await self._answer(item):
                broken = True
                self.stop_reading()
                self.writer.transport.abort()
                self._abandon(item)
            self._answered(item)
        if self._app_tail is not None:
            if broken:
                self._app_tail.cancel()
            await _ended(self._app_tail)

    async def _answer(self, item: Answer) -> bool:
        """Send what ``item`` is answered with now; False: close the connection without an answer."""
        code = item.code
        if item.future is not None:
            try:
                receipt = await item.future
            except Exception:  # noqa: BLE001 - unconfirmed: never answer it, nor anything after it
                log.warning("mllp.closing_unconfirmed", adapter=self.name)
                return False
            code = receipt.code
        error = item.error  # read after the wait: strict triage off the loop fills it in meanwhile
        if is_enhanced(item.head):
            return await self._answer_enhanced(item, code, error)
        if item.outcome is not None:
            try:
                code, error = await self._outcome(item)
            except TimeoutError:
                log.warning("mllp.closing_uncommitted", adapter=self.name)
                return False
        return await self._send(item.head, [code], error)

    async def _answer_enhanced(self, item: Answer, code: str, error: AckError | None) -> bool:
        """The accept ACK now (``ack_after: commit``: once committed); the application ACK (if MSH-16 may
        want one) in its own order."""
        if self.settings.ack_after == "commit" and item.outcome is not None:
            try:
                await item.outcome
            except TimeoutError:
                log.warning("mllp.closing_uncommitted", adapter=self.name)
                return False
        ok = await self._send(item.head, accept_codes(item.head, "AA" if item.accepted else code), error)
        if ok and app_ack_wanted(item.head):
            prev, self._app_tail = self._app_tail, None
            self._app_tail = asyncio.ensure_future(self._app_ack(item, code, error, prev))
        return ok

    async def _app_ack(
        self, item: Answer, code: str, error: AckError | None, prev: asyncio.Future[None] | None
    ) -> None:
        if item.outcome is not None:
            try:
                code, error = await self._outcome(item)
            except TimeoutError:
                log.warning("mllp.app_ack_uncommitted", adapter=self.name)
                code = ""
        if prev is not None:
            await _ended(prev)  # application ACKs leave in the order of their messages
        if code and app_ack_wanted(item.head, code):
            await self._send(item.head, [code], error, flush=True)

    async def _send(self, head: MshHeader, codes: list[str], error: AckError | None, *, flush: bool = False) -> bool:
        if self.writer.is_closing():
            return False
        for c in codes:
            ack = build_ack(
                head, c, error=error if c not in ("AA", "CA") else None, default_charset=self.settings.default_charset
            )
            self.writer.write(encode(ack))
            metrics.mllp_ack(self.name, c)
        try:
            if flush or self.answers.empty():
                await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    def _abandon(self, item: Answer) -> None:
        if item.future is not None:
            item.future.add_done_callback(_retrieve)
        if item.outcome is not None:
            item.outcome.cancel()

    def _answered(self, item: Answer) -> None:
        self.outstanding -= 1
        self.held_bytes -= item.size
        self.slots.release()
        self._room.set()

    async def _close(self) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.TimeoutError):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5.0)
