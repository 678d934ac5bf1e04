"""Streaming split of HL7 v2 files and FHS/BHS batches, with the batch's integrity checks.

:class:`Splitter` takes a file block by block (:meth:`Splitter.feed`, then :meth:`Splitter.finish`) and
gives each message as a :class:`Piece` as soon as it is complete, so memory holds one message and one
block, whatever the size of the file. The per-message rules are those of
:func:`mappings.hl7v2.parser.split_messages` (which uses this class): segments end in CR, LF or CRLF and
are joined by CR, blank lines and ``//`` or ``/* ... */`` comment lines are dropped, MLLP framing bytes (VT/FS/NUL)
around a line are stripped, a leading UTF-8 BOM is dropped, each ``MSH`` starts a message and segments
before the first ``MSH`` belong to no message.

Batch integrity (``FHS`` file header, ``BHS`` batch header, ``BTS`` batch trailer, ``FTS`` file
trailer):

* a message is complete when the next ``MSH``, ``BHS``, ``BTS`` or ``FTS`` follows it, or when the
  file ends and it has no framing at all; the message still open at the end of a framed file (a
  ``BHS`` without its ``BTS``, an ``FHS`` without its ``FTS``) may be cut: its piece carries
  ``HL7_BATCH_TRUNCATED`` and is never mapped (the file adapter dead-letters it,
  :func:`mappings.hl7v2.parser.split_messages` refuses the file with that code);
* ``BTS-1`` (batch message count) must equal the messages since the ``BHS`` (or since the start of the
  file), ``FTS-1`` (file batch count) the batches in the file; a difference is a file-level problem
  ``HL7_BATCH_COUNT_MISMATCH`` (the intact messages still go through; the caller reports it);
* a framing segment missing where the file ends (no ``BTS``/``FTS`` after a header) is a file-level
  problem ``HL7_BATCH_TRUNCATED`` when no message was left open.

A message larger than ``max_message_bytes`` is not kept: its piece has empty ``raw`` and
``HL7_MESSAGE_TOO_LARGE`` (with its size), and the split goes on at the next message. Problems are
``CODE: text`` with counts and positions only, never content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_BOM8 = b"\xef\xbb\xbf"
_FRAME_BYTES = b"\x0b\x1c\x00"
_FRAMING = frozenset((b"FHS", b"BHS", b"BTS", b"FTS"))
_OPENERS = (b"FHS", b"BHS")
_BLANK = b" \t\r\n\x0b\x1c\x00"
#: how a comment line starts (``// ...``, ``/* ... */``)
_COMMENTS = (b"//", b"/*")


@dataclass(frozen=True, slots=True)
class Piece:
    """One message of a file: its bytes (segments joined by CR), position and problem if any."""

    index: int
    raw: bytes
    problem: str | None = None  # "CODE: text": reject it, never map it

    @property
    def code(self) -> str | None:
        return self.problem.split(":", 1)[0] if self.problem else None


@dataclass
class Framing:
    """The batch framing seen so far (counts only)."""

    file_header: bool = False
    file_trailer: bool = False
    batch_headers: int = 0
    batch_trailers: int = 0
    batch_open: bool = False
    in_batch: int = 0  # messages since the last BHS (or the start)
    problems: list[str] = field(default_factory=list)

    @property
    def framed(self) -> bool:
        return self.file_header or self.batch_headers > 0

    @property
    def closed(self) -> bool:
        """Every header seen has its trailer."""
        return not self.batch_open and (self.file_trailer or not self.file_header)


class Splitter:
    """Incremental splitter (see the module docstring); ``feed`` blocks of any size, then ``finish``."""

    def __init__(self, max_message_bytes: int | None = None) -> None:
        self.max_message_bytes = max_message_bytes
        self.framing = Framing()
        self.count = 0  # messages started so far
        self._start = True  # BOM and leading bytes not looked at yet
        self._parts: list[bytes] = []  # the line not yet ended, in pieces
        self._partial = 0  # its length
        self._skipping = False  # inside an over-long line whose head was already judged
        self._segments: list[bytes] | None = None  # the open message (None: no message open)
        self._size = 0
        self._dropped = False  # the open message went over the limit: its bytes are not kept

    def feed(self, block: bytes) -> list[Piece]:
        """The messages completed by ``block``."""
        if self._start:
            block = self._strip_bom(block)
            if not block:
                return []
        out: list[Piece] = []
        if self._skipping:
            block = self._skip(block)
        cut = max(block.rfind(b"\r"), block.rfind(b"\n"))
        if cut < 0:
            self._hold(block, out)
            return out
        head = block[: cut + 1]
        if self._parts:
            head = b"".join(self._parts) + head
            self._parts, self._partial = [], 0
        self._lines(head, out)
        if cut + 1 < len(block):
            self._hold(block[cut + 1 :], out)
        return out

    def finish(self) -> list[Piece]:
        """The last message and the file-level checks (in ``framing.problems``)."""
        out: list[Piece] = []
        if self._parts:
            self._lines(b"".join(self._parts), out)
            self._parts, self._partial = [], 0
        f = self.framing
        if self._segments is not None:
            if f.framed and not f.closed:
                self._close(
                    out,
                    f"HL7_BATCH_TRUNCATED: message {self.count - 1} is not followed by "
                    f"{'BTS' if f.batch_open else 'FTS'}: it may be cut",
                )
            else:
                self._close(out)
        elif f.framed and not f.closed:
            f.problems.append(f"HL7_BATCH_TRUNCATED: the file ends without {'BTS' if f.batch_open else 'FTS'}")
        return out

    # -- lines ---------------------------------------------------------------------------------

    def _strip_bom(self, block: bytes) -> bytes:
        if len(block) < 3 and _BOM8.startswith(block):
            self._parts.append(block)  # too short to tell yet
            self._partial += len(block)
            return b""
        if self._parts:
            block = b"".join(self._parts) + block
            self._parts, self._partial = [], 0
        self._start = False
        return block[3:] if block.startswith(_BOM8) else block

    def _lines(self, data: bytes, out: list[Piece]) -> None:
        if b"\n" in data:
            data = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
        limit = self.max_message_bytes
        segments = self._segments
        for line in data.split(b"\r"):
            line = line.strip(_FRAME_BYTES).lstrip()  # trailing spaces may be data: keep them
            if not line or line[:2] in _COMMENTS:
                continue
            tag = line[:3]
            if tag == b"MSH":
                self._close(out)
                segments = self._open()
            elif tag in _FRAMING:
                self._close(out)
                self._frame(tag, line)
                segments = None
                continue
            elif segments is None:
                continue  # a segment outside any message (before the first MSH, after a trailer)
            self._size += len(line) + 1
            if self._dropped:
                continue
            if limit is not None and self._size > limit:
                segments = self._drop()
                continue
            segments.append(line)

    def _hold(self, rest: bytes, out: list[Piece]) -> None:
        """Keep the unended line; a line too long for any message is judged by its head and skipped."""
        self._parts.append(rest)
        self._partial += len(rest)
        limit = self.max_message_bytes
        if limit is None or self._partial <= limit:
            return
        head = b"".join(p[:64] for p in self._parts[:64]).lstrip(_BLANK)[:3]  # no copy of the whole line
        self._parts, size, self._partial = [], self._partial, 0
        self._skipping = True
        if head[:2] in _COMMENTS:
            return  # an over-long comment line
        if head == b"MSH":
            self._close(out)
            self._open()
        elif self._segments is None:
            return
        self._size += size
        self._drop()

    def _skip(self, block: bytes) -> bytes:
        """The rest of ``block`` after the end of the over-long line (its bytes counted, not kept)."""
        ends = [i for i in (block.find(b"\r"), block.find(b"\n")) if i >= 0]
        if not ends:
            if self._segments is not None:
                self._size += len(block)
            return b""
        end = min(ends)
        if self._segments is not None:
            self._size += end + 1
        self._skipping = False
        return block[end + 1 :]

    # -- messages ------------------------------------------------------------------------------

    def _open(self) -> list[bytes]:
        self._segments, self._size, self._dropped = [], 0, False
        self.count += 1
        self.framing.in_batch += 1
        return self._segments

    def _drop(self) -> list[bytes]:
        """The open message went over the limit: forget its bytes, keep counting its size."""
        self._dropped = True
        self._segments = []
        return self._segments

    def _close(self, out: list[Piece], problem: str | None = None) -> None:
        if self._segments is None:
            return
        index = self.count - 1
        if self._dropped:
            out.append(
                Piece(
                    index,
                    b"",
                    f"HL7_MESSAGE_TOO_LARGE: message {index} of {self._size} bytes "
                    f"exceeds max_message_bytes={self.max_message_bytes}",
                )
            )
        else:
            out.append(Piece(index, b"\r".join(self._segments) + b"\r", problem))
        self._segments, self._size, self._dropped = None, 0, False

    # -- framing -------------------------------------------------------------------------------

    def _frame(self, tag: bytes, line: bytes) -> None:
        f = self.framing
        if tag == b"FHS":
            f.file_header = True
        elif tag == b"BHS":
            if f.batch_open:
                f.problems.append(f"HL7_BATCH_TRUNCATED: batch {f.batch_headers} has no BTS")
            f.batch_headers += 1
            f.batch_open, f.in_batch = True, 0
        elif tag == b"BTS":
            f.batch_trailers += 1
            self._check_count(
                _count(line), f.in_batch, f"BTS-1 of batch {max(f.batch_headers, f.batch_trailers)}", "messages"
            )
            f.batch_open, f.in_batch = False, 0
        else:
            if f.batch_open:
                f.problems.append(f"HL7_BATCH_TRUNCATED: batch {f.batch_headers} has no BTS")
                f.batch_open = False
            f.file_trailer = True
            batches = f.batch_headers or f.batch_trailers or int(self.count > 0)
            self._check_count(_count(line), batches, "FTS-1", "batches")

    def _check_count(self, declared: int | None, found: int, what: str, unit: str) -> None:
        if declared is not None and declared != found:
            self.framing.problems.append(
                f"HL7_BATCH_COUNT_MISMATCH: {what} says {declared} {unit}, the file holds {found}"
            )


def _count(line: bytes) -> int | None:
    """Field 1 of a BTS/FTS line as a count (None when empty or not a number)."""
    if len(line) < 5:
        return None
    value = line[4:].split(line[3:4], 1)[0].strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


def looks_truncated(head: bytes, tail: bytes) -> bool:
    """True when a file that starts with ``head`` (its first bytes) and ends with ``tail`` (its last
    bytes) opens a batch (FHS/BHS) but does not end with the matching trailer line (FTS/BTS): it may
    still be being written, or have been cut."""
    start = head[3:] if head.startswith(_BOM8) else head
    opener = start.lstrip(_BLANK)[:3]
    if opener not in _OPENERS:
        return False
    body = tail.rstrip(_BLANK)
    last = body[max(body.rfind(b"\r"), body.rfind(b"\n")) + 1 :].lstrip(_BLANK)[:3]
    return last not in ((b"FTS",) if opener == b"FHS" else (b"BTS", b"FTS"))


__all__ = ["Framing", "Piece", "Splitter", "looks_truncated"]
