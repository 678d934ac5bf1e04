"""The streaming splitter: same messages whatever the block size, batch counts and trailers, size limit."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ParseError
from engine.model import MapContext
from mappings.hl7v2 import map_message
from mappings.hl7v2.batch import Piece, Splitter, looks_truncated
from mappings.hl7v2.parser import split_messages
from tests.helpers import fnr

FNR = fnr(3).encode()
MSG = (
    b"MSH|^~\\&|LAB|OUS|EPJ|HOSP|20260101||ADT^A08|C{n}|P|2.5\r"
    b"EVN|A08|20260101\rPID|1||" + FNR + b"^^^NOR^FNR||Nordmann^Kari\r"
)


def msg(n: int) -> bytes:
    return MSG.replace(b"{n}", str(n).encode())


def split(data: bytes, block: int = 1 << 20, limit: int | None = None) -> tuple[list[Piece], Splitter]:
    s = Splitter(limit)
    out: list[Piece] = []
    for i in range(0, len(data), block):
        out += s.feed(data[i : i + block])
    return out + s.finish(), s


def batch(*msgs: bytes, bts: bytes | None = None, fts: bytes | None = None, fhs: bool = True) -> bytes:
    body = (b"FHS|^~\\&|LAB\r" if fhs else b"") + b"BHS|^~\\&|LAB\r" + b"".join(msgs)
    if bts is not None:
        body += b"BTS|" + bts + b"\r"
    if fts is not None:
        body += b"FTS|" + fts + b"\r"
    return body


@settings(max_examples=60, deadline=None)
@given(block=st.integers(1, 200), crlf=st.booleans(), bom=st.booleans())
def test_any_block_size_gives_the_same_messages(block: int, crlf: bool, bom: bool) -> None:
    data = batch(msg(1), b"// comment\r\r", msg(2), msg(3), bts=b"3", fts=b"1")
    if crlf:
        data = data.replace(b"\r", b"\r\n")
    if bom:
        data = b"\xef\xbb\xbf" + data
    pieces, s = split(data, block)
    assert [p.raw for p in pieces] == [msg(1), msg(2), msg(3)]
    assert [p.index for p in pieces] == [0, 1, 2] and all(p.problem is None for p in pieces)
    assert s.framing.problems == [] and s.count == 3


def test_split_messages_is_the_splitter() -> None:
    data = batch(msg(1), msg(2), bts=b"2", fts=b"1")
    assert split_messages(data) == [msg(1), msg(2)]


def test_split_messages_refuses_a_cut_message_instead_of_mapping_it() -> None:
    """``enjournal map FILE`` and the worker's mapping of a FHS/BHS file never map the cut last message
    (it would become a citizen without its FNR): the whole file is refused with the batch code."""
    data = batch(msg(1), msg(2))[:-30]
    with pytest.raises(ParseError) as info:
        split_messages(data)
    assert info.value.code == "HL7_BATCH_TRUNCATED" and FNR.decode() not in str(info.value)
    with pytest.raises(ParseError) as mapped:
        map_message(data, MapContext(envelope_id="e", adapter="a", received_at=datetime.now(UTC)))
    assert mapped.value.code == "HL7_BATCH_TRUNCATED"
    assert split_messages(batch(msg(1), bts=b"1")) == [msg(1)]  # only the FTS missing: nothing is cut


def test_last_message_cut_mid_pid_is_truncated() -> None:
    data = batch(msg(1), msg(2))[:-30]  # the file ends inside the second PID: no BTS, no FTS
    pieces, _ = split(data, 17)
    assert pieces[0].problem is None
    assert pieces[1].code == "HL7_BATCH_TRUNCATED" and pieces[1].index == 1
    assert FNR not in (pieces[1].problem or "").encode() and FNR not in pieces[1].raw  # cut inside the FNR


@pytest.mark.parametrize(
    "data,code",
    [
        (batch(msg(1), bts=b"1"), "HL7_BATCH_TRUNCATED"),  # FHS without FTS, the batch is closed
        (batch(msg(1), msg(2), bts=b"5", fts=b"1"), "HL7_BATCH_COUNT_MISMATCH"),
        (batch(msg(1), bts=b"1", fts=b"3"), "HL7_BATCH_COUNT_MISMATCH"),
        (batch(msg(1), fts=b"1"), "HL7_BATCH_TRUNCATED"),  # BHS without BTS
    ],
)
def test_file_level_problems_leave_intact_messages_alone(data: bytes, code: str) -> None:
    pieces, s = split(data)
    assert all(p.problem is None for p in pieces)
    assert [p.split(":")[0] for p in s.framing.problems] == [code]


def test_bts_with_two_messages_but_five_declared() -> None:
    _pieces, s = split(batch(msg(1), msg(2), bts=b"5", fts=b"1"))
    assert s.framing.problems == ["HL7_BATCH_COUNT_MISMATCH: BTS-1 of batch 1 says 5 messages, the file holds 2"]


def test_plain_files_are_never_truncated() -> None:
    pieces, s = split(msg(1) + msg(2)[:-20])
    assert [p.problem for p in pieces] == [None, None] and s.framing.problems == []


def test_two_batches_counted_each() -> None:
    data = b"FHS|^~\\&\rBHS|^~\\&\r" + msg(1) + msg(2) + b"BTS|2\rBHS|^~\\&\r" + msg(3) + b"BTS|1\rFTS|2\r"
    pieces, s = split(data, 5)
    assert len(pieces) == 3 and s.framing.problems == []


@pytest.mark.parametrize("block", [7, 1000, 1 << 20])
def test_too_large_message_dropped_neighbours_kept(block: int) -> None:
    big = msg(2).replace(b"PID|1||", b"OBX|1|ED|" + b"A" * 5000 + b"\rPID|1||")
    one_line = msg(3).replace(b"PID|1||", b"OBX|1|ED|" + b"B" * 9000 + b"|PID|1||")
    pieces, _ = split(msg(1) + big + msg(4) + one_line + msg(5), block, limit=2000)
    assert [p.raw for p in pieces if p.problem is None] == [msg(1), msg(4), msg(5)]
    dropped = [p for p in pieces if p.problem]
    assert [p.index for p in dropped] == [1, 3] and all(p.raw == b"" for p in dropped)
    assert [p.code for p in dropped] == ["HL7_MESSAGE_TOO_LARGE"] * 2
    sizes = [int(re.findall(r"of (\d+) bytes", p.problem or "")[0]) for p in dropped]
    assert sizes[0] >= 5000 and sizes[1] >= 9000


def test_huge_msh_line_itself() -> None:
    huge = b"MSH|^~\\&|" + b"X" * 50_000 + b"\rPID|1\r"
    pieces, _ = split(msg(1) + huge + msg(2), 4096, limit=10_000)
    assert [p.code for p in pieces] == [None, "HL7_MESSAGE_TOO_LARGE", None]
    assert pieces[2].raw == msg(2)


@pytest.mark.parametrize(
    "head,tail,cut",
    [
        (b"FHS|^~\\&\r", b"...\rBTS|1\rFTS|1\r", False),
        (b"FHS|^~\\&\r", b"...\rBTS|1\r", True),
        (b"\xef\xbb\xbfBHS|^~\\&\r", b"...\rBTS|1\r\n", False),
        (b"BHS|^~\\&\r", b"PID|1||1303", True),
        (b"MSH|^~\\&\r", b"PID|1||1303", False),  # no batch framing: nothing to tell by
    ],
)
def test_looks_truncated(head: bytes, tail: bytes, cut: bool) -> None:
    assert looks_truncated(head, tail) is cut


def test_block_comment_lines_before_and_between_messages_are_dropped() -> None:
    from mappings.hl7v2.parser import split_messages

    one = b"MSH|^~\\&|A|F|||2026||ADT^A08|1|P|2.5\rPID|1||9^^^H\r"
    two = b"MSH|^~\\&|A|F|||2026||ADT^A08|2|P|2.5\rPID|1||8^^^H\r"
    raw = b"/* export */\r\n" + one + b"/* next */\r\n" + two
    assert split_messages(raw) == [one, two]
