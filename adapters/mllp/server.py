"""The asyncio MLLP server: connections, per-connection ordered answers, graceful stop.

Each connection reads frames (:mod:`adapters.mllp.framing`), triages every message
(:mod:`adapters.mllp.triage`) and submits it to the shared :class:`~adapters.mllp.publisher.Publisher`.
A writer task answers the frames strictly in arrival order (pipelining), each only when its
publish is confirmed. When a publish fails for good, the connection is closed without an answer
for that frame or any later one: the sender retries and the duplicate check makes that harmless.

An oversize frame is answered AR (``MLLP_FRAME_TOO_LARGE``) from its first bytes and the stream
resynchronises on the next frame; garbage between frames is skipped (counted, never logged).
A connection idle for ``idle_timeout`` seconds with nothing outstanding is closed. On stop the
server stops accepting, each connection stops reading, and every frame already read is published
and answered before the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from adapters.mllp.ack import FALLBACK, AckError, build_ack, plan, salvage_header
from adapters.mllp.framing import Frame, FrameDecoder, Garbage, Oversize, encode
from adapters.mllp.publisher import Publisher
from adapters.mllp.triage import Triage, triage
from engine import metrics
from mappings.hl7v2.parser import MshHeader

if TYPE_CHECKING:
    from adapters.mllp import Settings

log = structlog.get_logger("adapters.mllp")
READ_CHUNK = 256 * 1024


@dataclass(slots=True)
class Answer:
    """One frame's place in the connection's answer order."""

    head: MshHeader
    future: asyncio.Future[str] | None  # None: answer ``code`` at once (nothing to publish)
    code: str = "AA"
    error: AckError | None = None


def _retrieve(f: asyncio.Future[str]) -> None:
    if not f.cancelled():
        f.exception()  # nobody will answer it: keep asyncio from reporting it as unretrieved


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, name: str,
                 settings: Settings, publisher: Publisher, strict: Callable[[bytes], list[str]] | None) -> None:
        self.reader, self.writer = reader, writer
        self.name, self.settings, self.publisher, self.strict = name, settings, publisher, strict
        self.decoder = FrameDecoder(settings.max_message_bytes)
        self.answers: asyncio.Queue[Answer | None] = asyncio.Queue()
        self.slots = asyncio.Semaphore(settings.max_pending_per_connection)
        self.outstanding = 0
        self.frames = 0
        peer = writer.get_extra_info("peername")
        self.peer = {"peer": str(peer[0])} if isinstance(peer, tuple) and peer else {}
        self._reading: asyncio.Task[None] | None = None

    def stop_reading(self) -> None:
        if self._reading is not None:
            self._reading.cancel()

    async def serve(self) -> None:
        log.info("mllp.connection_opened", adapter=self.name, **self.peer)
        metrics.mllp_connection(self.name, 1)
        writing = asyncio.create_task(self._write_loop())
        self._reading = asyncio.create_task(self._read_loop())
        try:
            await self._reading
        except asyncio.CancelledError:
            if not self._reading.cancelled():
                raise
        except (ConnectionError, OSError):
            pass  # the peer went away; what was read is still published
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the connection half open
            log.error("mllp.connection_failed", adapter=self.name, error=type(exc).__name__)
        self.answers.put_nowait(None)
        await writing
        await self._close()
        metrics.mllp_connection(self.name, -1)
        log.info("mllp.connection_closed", adapter=self.name, frames=self.frames, **self.peer)

    async def _read_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.settings.idle_timeout):  # no task per read, as wait_for makes
                    data = await self.reader.read(READ_CHUNK)
            except TimeoutError:
                if self.outstanding or self.decoder.pending:
                    continue
                log.info("mllp.idle_timeout", adapter=self.name)
                return
            if not data:
                return
            for event in self.decoder.feed(data):
                await self._on_event(event)

    async def _on_event(self, event: Frame | Oversize | Garbage) -> None:
        if isinstance(event, Garbage):
            log.warning("mllp.garbage_skipped", adapter=self.name, bytes=event.size)
            return
        await self.slots.acquire()
        self.outstanding += 1
        self.frames += 1
        if isinstance(event, Oversize):
            log.warning("mllp.frame_too_large", adapter=self.name, bytes=event.size)
            err = AckError("MLLP_FRAME_TOO_LARGE", f"frame exceeds {self.settings.max_message_bytes} bytes")
            self.answers.put_nowait(Answer(salvage_header(event.head), None, "AR", err))
            return
        if self.strict is None:
            t = self._triage(event.payload)
            self.answers.put_nowait(Answer(t.head, self.publisher.submit(t), t.code, t.error))
            return
        answer = Answer(FALLBACK, None)  # strict validation is slow: off the loop, answered in order
        answer.future = asyncio.ensure_future(self._triage_off_loop(event.payload, answer))
        self.answers.put_nowait(answer)

    def _triage(self, raw: bytes) -> Triage:
        t = triage(raw, adapter=self.name, options=self.settings, source_system=self.settings.source_system,
                   attributes=dict(self.peer), strict=self.strict)
        if t.error is not None:
            log.info("mllp.rejected", adapter=self.name, envelope=t.envelope.id, code=t.error.code)
        return t

    async def _triage_off_loop(self, raw: bytes, answer: Answer) -> str:
        t = await asyncio.get_running_loop().run_in_executor(None, self._triage, raw)
        answer.head, answer.code, answer.error = t.head, t.code, t.error
        return await self.publisher.submit(t)

    async def _write_loop(self) -> None:
        broken = False
        while (item := await self.answers.get()) is not None:
            code = item.code
            if item.future is not None and broken:
                item.future.add_done_callback(_retrieve)
            elif item.future is not None:
                try:
                    code = await item.future
                except Exception:  # noqa: BLE001 - unconfirmed: never answer it, nor anything after it
                    broken = True
                    log.warning("mllp.closing_unconfirmed", adapter=self.name)
                    self.stop_reading()
                    self.writer.transport.abort()
            if not broken:
                broken = not await self._send(item, code)
            self.outstanding -= 1
            self.slots.release()

    async def _send(self, item: Answer, code: str) -> bool:
        if self.writer.is_closing():
            return False
        for c in plan(item.head, code):
            ack = build_ack(item.head, c, error=item.error if c not in ("AA", "CA") else None,
                            default_charset=self.settings.default_charset)
            self.writer.write(encode(ack))
            metrics.mllp_ack(self.name, c)
        try:
            if self.answers.empty():
                await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    async def _close(self) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.TimeoutError):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5.0)
