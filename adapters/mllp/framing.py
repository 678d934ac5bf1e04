"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2): ``<VT> message <FS><CR>``.

:class:`FrameDecoder` is a pure, incremental state machine: feed it whatever a socket read
returned and it yields events in stream order:

* :class:`Frame`: the bytes between ``0x0B`` and ``0x1C 0x0D`` (framing removed);
* :class:`Oversize`: a frame grew past ``max_bytes``; its bytes are discarded up to the next
  ``0x1C 0x0D`` (the sender gets one AR for it, then the stream resynchronises);
* :class:`Garbage`: bytes outside any frame were skipped (only a count, never the content).

A ``0x0B`` inside an unfinished frame starts a new frame (the sender restarted): the partial
frame before it is reported as garbage. The buffer never holds more than ``max_bytes`` plus the
last ``feed``'s data: a frame growing past ``max_bytes`` is dropped from it at once. Nothing here
touches a socket or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

START = 0x0B
END = b"\x1c\x0d"
_START_B = b"\x0b"
HEAD_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Oversize:
    size: int  # bytes seen before the frame was given up (at least ``max_bytes``)
    head: bytes = b""  # the first bytes of the frame, enough to read its MSH for the AR


@dataclass(frozen=True, slots=True)
class Garbage:
    size: int


Event = Frame | Oversize | Garbage


def encode(payload: bytes) -> bytes:
    """Wrap ``payload`` in MLLP framing."""
    return _START_B + payload + END


class FrameDecoder:
    """Incremental MLLP decoder; see the module docstring."""

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._in_frame = False
        self._skipping = False  # inside an oversize frame, waiting for its end
        self._skipped = 0
        self._head = b""
        self._scanned = 0  # bytes of the current frame already searched for END / VT

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held in the buffer (0 between frames)."""
        return len(self._buf) if self._in_frame else 0

    @property
    def buffered(self) -> int:
        """Bytes held in the buffer."""
        return len(self._buf)

    @property
    def in_frame(self) -> bool:
        """A frame was started and has not ended (an oversize one being skipped too)."""
        return self._in_frame or self._skipping

    def clear(self) -> None:
        """Forget everything buffered (the connection is going away)."""
        self._buf = bytearray()
        self._in_frame = self._skipping = False
        self._skipped = self._scanned = 0
        self._head = b""

    def feed(self, data: bytes) -> list[Event]:
        """Add ``data`` and return every complete event it produced, in order."""
        self._buf += data
        events: list[Event] = []
        while self._buf:
            if self._skipping:
                if not self._skip_oversize(events):
                    break
            elif not self._in_frame:
                if not self._seek_start(events):
                    break
            elif not self._take_frame(events):
                break
        return events

    def _seek_start(self, events: list[Event]) -> bool:
        i = self._buf.find(START)
        if i < 0:
            events.append(Garbage(len(self._buf)))
            self._buf.clear()
            return False
        if i > 0:
            events.append(Garbage(i))
        del self._buf[: i + 1]
        self._in_frame = True
        return True

    def _take_frame(self, events: list[Event]) -> bool:
        frm = max(0, self._scanned - 1)
        end = self._buf.find(END, frm)
        limit = len(self._buf) if end < 0 else end
        restart = self._buf.find(START, frm, limit)
        if restart >= 0:
            events.append(Garbage(restart + 1))  # the VT that opened it plus the partial frame
            del self._buf[: restart + 1]
            self._scanned = 0
            return True
        if end < 0:
            self._scanned = len(self._buf)
            if len(self._buf) > self.max_bytes:
                self._start_skipping()
                return True
            return False
        self._scanned = 0
        if end > self.max_bytes:
            events.append(Oversize(end, bytes(self._buf[:HEAD_BYTES])))
        else:
            events.append(Frame(bytes(self._buf[:end])))
        del self._buf[: end + len(END)]
        self._in_frame = False
        return True

    def _start_skipping(self) -> None:
        keep = 1 if self._buf.endswith(END[:1]) else 0  # an FS whose CR is still to come
        self._head = bytes(self._buf[:HEAD_BYTES])
        self._skipped = len(self._buf) - keep
        del self._buf[: len(self._buf) - keep]
        self._skipping = True
        self._in_frame = False
        self._scanned = 0

    def _skip_oversize(self, events: list[Event]) -> bool:
        end = self._buf.find(END)
        if end < 0:
            keep = 1 if self._buf.endswith(END[:1]) else 0
            self._skipped += len(self._buf) - keep
            del self._buf[: len(self._buf) - keep]
            return False
        events.append(Oversize(self._skipped + end, self._head))
        self._head = b""
        del self._buf[: end + len(END)]
        self._skipping = False
        self._skipped = 0
        return True
