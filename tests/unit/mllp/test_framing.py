"""MLLP framing: frames split across reads, garbage between frames, oversize frames, restarts."""

from __future__ import annotations

from adapters.mllp.framing import Frame, FrameDecoder, Garbage, Oversize, encode

MSG = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1\r"


def frames(events: list[object]) -> list[bytes]:
    return [e.payload for e in events if isinstance(e, Frame)]


def test_one_frame() -> None:
    assert frames(FrameDecoder().feed(encode(MSG))) == [MSG]


def test_many_frames_in_one_read() -> None:
    data = b"".join(encode(MSG + bytes([i])) for i in range(48, 58))
    assert frames(FrameDecoder().feed(data)) == [MSG + bytes([i]) for i in range(48, 58)]


def test_frame_split_at_every_byte() -> None:
    data = encode(MSG) + encode(MSG)
    for cut in range(len(data) + 1):
        d = FrameDecoder()
        got = frames(d.feed(data[:cut])) + frames(d.feed(data[cut:]))
        assert got == [MSG, MSG], cut


def test_byte_by_byte() -> None:
    d = FrameDecoder()
    got: list[bytes] = []
    for b in encode(MSG) * 3:
        got += frames(d.feed(bytes([b])))
    assert got == [MSG] * 3
    assert d.pending == 0


def test_garbage_between_frames_is_skipped_and_counted() -> None:
    events = FrameDecoder().feed(b"xx" + encode(MSG) + b"\r\n junk" + encode(MSG))
    assert frames(events) == [MSG, MSG]
    assert [e.size for e in events if isinstance(e, Garbage)] == [2, 7]


def test_fs_without_cr_is_not_an_end() -> None:
    d = FrameDecoder()
    assert d.feed(b"\x0bab\x1ccd") == []
    assert frames(d.feed(b"\x1c\x0d")) == [b"ab\x1ccd"]


def test_start_inside_frame_restarts() -> None:
    events = FrameDecoder().feed(b"\x0bhalf a mess" + encode(MSG))
    assert frames(events) == [MSG]
    assert isinstance(events[0], Garbage)


def test_oversize_complete_frame_then_resync() -> None:
    big = b"MSH|^~\\&|A|B|C|D|||ADT^A01|BIG|P|2.5\r" + b"x" * 200
    events = FrameDecoder(max_bytes=100).feed(encode(big) + encode(MSG[:90]))
    assert isinstance(events[0], Oversize) and events[0].head.startswith(b"MSH|")
    assert frames(events) == [MSG[:90]]


def test_oversize_streamed_is_not_buffered() -> None:
    d = FrameDecoder(max_bytes=1000)
    assert d.feed(b"\x0bMSH|^~\\&|" + b"y" * 600) == []
    for _ in range(100):
        assert d.feed(b"y" * 999 + b"\x1c") == []  # FS at a read boundary, then more data
        assert len(d._buf) <= 1000
    events = d.feed(b"\x0d" + encode(b"MSH|ok"))
    assert isinstance(events[0], Oversize) and events[0].size > 100_000
    assert events[0].head.startswith(b"MSH|")
    assert frames(events) == [b"MSH|ok"]


def test_oversize_end_split_across_reads() -> None:
    d = FrameDecoder(max_bytes=10)
    assert d.feed(b"\x0b" + b"z" * 50 + b"\x1c") == []
    events = d.feed(b"\x0d")
    assert len(events) == 1 and isinstance(events[0], Oversize)
