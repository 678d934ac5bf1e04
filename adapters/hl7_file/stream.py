"""One HL7 v2 file read as a stream: split block by block, triage, publish in bounded groups.

:class:`FileRun` feeds blocks of the file to :class:`mappings.hl7v2.batch.Splitter` and collects the
messages into a group of at most ``publish_group_messages`` messages or ``publish_group_bytes`` bytes;
a full group is triaged (:func:`adapters.hl7_intake.triage.triage`) and handed to the bus
(:meth:`adapters.handoff.Handoff.send`) while
the next group is read, with at most one group in flight. Memory holds a block, a group being
gathered and a group being confirmed, whatever the size of the file.

The envelopes of a group are built when the group is sent, so the last group (the one the end of the
file closed) carries ``count``; envelopes of earlier groups of a large file carry ``file`` and
``index`` only. A piece the splitter flagged (``HL7_MESSAGE_TOO_LARGE`` without its bytes,
``HL7_BATCH_TRUNCATED`` with them) becomes an envelope with a ``rejection`` that the worker dead-letters
without mapping. A file-level problem (``HL7_BATCH_COUNT_MISMATCH``, a missing trailer) becomes a
content-free envelope with a ``rejection`` and ``scope=file`` in the last group, so it is in the dead
letters too. A message whose bytes did not fit its declared charset carries ``charset_repaired``
(``<declared>-><used>``, set by :func:`adapters.hl7_intake.triage.triage`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from adapters.handoff import Confirmation, Handoff
from adapters.hl7_intake.options import Hl7Options, StrictCheck
from adapters.hl7_intake.triage import CONTENT_TYPE, triage
from engine.envelope import Envelope
from engine.rejection import Rejection
from mappings.hl7v2.batch import Piece, Splitter

BLOCK_BYTES = 1 << 20
_CUT = "HL7_BATCH_TRUNCATED"
#: rejected positions kept for the ``.reason`` file; past it only their number is written
MAX_LISTED = 10_000


@dataclass(frozen=True)
class RunLimits:
    max_message_bytes: int
    group_messages: int
    group_bytes: int


@dataclass
class RunResult:
    """What one pass over a file did (the adapter archives, waits or gives up with it)."""

    messages: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    rejected_total: int = 0
    file_problems: list[str] = field(default_factory=list)
    truncated: bool = False  # a message or the file looks cut: only rejected once the file is old enough
    held_back: bool = False  # the last group was not sent (the caller said the file may still grow)

    def reason_text(self) -> str:
        lines = [f"file: {p}" for p in self.file_problems]
        lines += [f"message {i}: {r}" for i, r in self.rejected]
        if self.rejected_total > len(self.rejected):
            lines.append(f"... and {self.rejected_total - len(self.rejected)} more rejected messages (dead letters)")
        return "\n".join(lines)


class FileRun:
    """Split, triage and publish one file (see the module docstring)."""

    def __init__(
        self,
        *,
        adapter: str,
        name: str,
        options: Hl7Options,
        source_system: str | None,
        handoff: Handoff,
        limits: RunLimits,
        strict: StrictCheck | None = None,
    ) -> None:
        self.adapter, self.name, self.options = adapter, name, options
        self.source_system, self.handoff, self.limits, self.strict = source_system, handoff, limits, strict
        self.splitter = Splitter(limits.max_message_bytes)
        self.result = RunResult()
        self._group: list[Piece] = []
        self._group_bytes = 0
        self._inflight: Confirmation | None = None

    def run(self, reader: BinaryIO, may_finish: Callable[[RunResult], bool]) -> RunResult:
        """Read ``reader`` to its end, publishing full groups on the way; then, if ``may_finish(result)``
        agrees (a truncated-looking file may still be written), the last group. Raises BusUnavailable."""
        try:
            while block := reader.read(BLOCK_BYTES):
                for piece in self.splitter.feed(block):
                    self._add(piece)
            last = self.splitter.finish()  # the message the end of the file closed, if any
            for piece in last:
                self._add(piece)
            res = self.result
            res.messages = self.splitter.count
            if res.messages == 0:
                return res  # nothing to publish: the caller rejects the file
            res.file_problems = list(self.splitter.framing.problems)
            res.truncated = any(p.code == _CUT for p in last) or any(p.startswith(_CUT) for p in res.file_problems)
            if not may_finish(res):
                res.held_back = True
                return res
            self._send(last=True)
            self._wait()
            return res
        finally:
            self._inflight = None

    def _add(self, piece: Piece) -> None:
        if self._group and (
            len(self._group) >= self.limits.group_messages
            or self._group_bytes + len(piece.raw) > self.limits.group_bytes
        ):
            self._send(last=False)
        self._group.append(piece)
        self._group_bytes += len(piece.raw)

    def _send(self, last: bool) -> None:
        count = str(self.splitter.count) if last else None
        envs = [self._envelope(p, count) for p in self._group]
        if last:
            envs += [self._file_envelope(p) for p in self.splitter.framing.problems]
        self._group, self._group_bytes = [], 0
        if not envs:
            return
        self._wait()
        self._inflight = self.handoff.send(envs)

    def _wait(self) -> None:
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            inflight.wait()

    def _attrs(self, piece: Piece, count: str | None) -> dict[str, str]:
        attrs = {"file": self.name, "index": str(piece.index)}
        if count is not None:
            attrs["count"] = count
        return attrs

    def _envelope(self, piece: Piece, count: str | None) -> Envelope:
        attrs = self._attrs(piece, count)
        if piece.problem is not None:
            self._reject(piece.index, piece.problem)
            return self._bare(piece.raw, attrs, Rejection.from_reason(piece.problem))
        t = triage(
            piece.raw,
            adapter=self.adapter,
            options=self.options,
            source_system=self.source_system,
            attributes=attrs,
            strict=self.strict,
        )
        if t.error is not None:
            self._reject(piece.index, t.error.reason)
        return t.envelope

    def _file_envelope(self, problem: str) -> Envelope:
        return self._bare(b"", {"file": self.name, "scope": "file"}, Rejection.from_reason(problem))

    def _bare(self, raw: bytes, attrs: dict[str, str], rejection: Rejection) -> Envelope:
        return Envelope.build(
            raw,
            adapter=self.adapter,
            mapping=self.options.mapping,
            content_type=CONTENT_TYPE,
            source_system=self.source_system,
            attributes=attrs,
            rejection=rejection,
        )

    def _reject(self, index: int, reason: str) -> None:
        res = self.result
        res.rejected_total += 1
        if len(res.rejected) < MAX_LISTED:
            res.rejected.append((index, reason))


__all__ = ["BLOCK_BYTES", "FileRun", "RunLimits", "RunResult"]
