"""HL7 v2 parser: header peek, batch splitting, charsets, delimiters, escapes, nulls, accessors."""

from __future__ import annotations

import pytest

from engine.errors import ParseError
from mappings.hl7v2.parser import (
    codec_for,
    decode,
    parse,
    parse_header,
    parse_text,
    serialise,
    split_messages,
)

ADT = (
    b"MSH|^~\\&|DIPS|SYK HF|ENJ|KOMM|20260315101500||ADT^A08^ADT_A01|CTRL-1|P|2.5|||AL|NE|NOR|8859/1\r"
    b"EVN|A08|20260315101400\r"
    b"PID|1||123^^^HOSP^PI~456^^^LAB^MR||Hansen^Kari^Anne||19690101|F|||Gate 1^^Oslo^^0150^NOR\r"
    b"ZXY|1|custom\r"
)


def test_parse_header_fields_and_dedup_key() -> None:
    h = parse_header(ADT)
    assert (h.field_sep, h.encoding_chars) == ("|", "^~\\&")
    assert (h.sending_app, h.sending_facility, h.receiving_app, h.receiving_facility) == (
        "DIPS",
        "SYK HF",
        "ENJ",
        "KOMM",
    )
    assert (h.message_type, h.trigger_event, h.structure) == ("ADT", "A08", "ADT_A01")
    assert (h.control_id, h.processing_id, h.version, h.timestamp) == ("CTRL-1", "P", "2.5", "20260315101500")
    assert (h.accept_ack_type, h.app_ack_type, h.charset) == ("AL", "NE", "8859/1")
    assert h.dedup_key() == "HL7|DIPS|SYK HF|CTRL-1"
    assert h.type_name == "ADT^A08"


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"\r\n  \n", b"\x0b", b"\xef\xbb\xbf\n"])
def test_parse_header_tolerates_bom_and_leading_whitespace(prefix: bytes) -> None:
    assert parse_header(prefix + ADT).control_id == "CTRL-1"


def test_parse_header_optional_fields_missing() -> None:
    h = parse_header(b"MSH|^~\\&|A|F|||20260101||ORU^R01|9|P|2.3")
    assert (h.accept_ack_type, h.app_ack_type, h.charset, h.structure) == (None, None, None, "")


def test_parse_header_skips_batch_headers() -> None:
    raw = b"FHS|^~\\&|X\rBHS|^~\\&|X\r" + ADT
    assert parse_header(raw).control_id == "CTRL-1"


@pytest.mark.parametrize(
    "raw,code",
    [
        (b"", "HL7_NO_MSH"),
        (b"PID|1||123", "HL7_NO_MSH"),
        (b"   \r\n", "HL7_NO_MSH"),
        (b"MSH|0~00||0|||||000|||2.8", "HL7_BAD_MSH"),
        (b"MSH", "HL7_BAD_MSH"),
        (b"MSH|^~\\&|A|B|C|D|2026||ADT^A01||P|2.5", "HL7_BAD_MSH"),  # no MSH-10
        (b"MSH|^~\\&|A|B|C|D|2026|||1|P|2.5", "HL7_BAD_MSH"),  # no MSH-9
        (b"MSH|^^\\&|A|B|C|D|2026||ADT^A01|1|P|2.5", "HL7_BAD_MSH"),  # repeated delimiter
    ],
)
def test_parse_header_errors(raw: bytes, code: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_header(raw)
    assert err.value.code == code


def test_parse_header_error_does_not_quote_values() -> None:
    with pytest.raises(ParseError) as err:
        parse_header(b"MSH|^~\\&|13916900443|B|C|D|2026||ADT^A01||P|2.5")
    assert "13916900443" not in str(err.value)


def test_parse_header_non_ascii_header_uses_charset() -> None:
    raw = "MSH|^~\\&|SYKEHUS|Tromsø|A|B|2026||ADT^A08|1|P|2.5||||||8859/1\r".encode("iso-8859-1")
    assert parse_header(raw).sending_facility == "Tromsø"


def test_split_messages_batch_and_file() -> None:
    msg2 = ADT.replace(b"CTRL-1", b"CTRL-2")
    raw = (
        b"FHS|^~\\&|X\r\nBHS|^~\\&|X\r\n// a comment\r\n"
        + ADT.replace(b"\r", b"\r\n")
        + b"\r\n\r\n"
        + msg2.replace(b"\r", b"\n")
        + b"BTS|2\nFTS|1\n"
    )
    out = split_messages(raw)
    assert len(out) == 2
    assert out[0] == ADT
    assert out[1] == msg2
    assert all(b"\n" not in m for m in out)


def test_split_messages_without_msh() -> None:
    with pytest.raises(ParseError) as err:
        split_messages(b"BHS|^~\\&\rBTS|0\r")
    assert err.value.code == "HL7_NO_MSH"


@pytest.mark.parametrize(
    "name,codec",
    [
        ("8859/1", "iso-8859-1"),
        ("UNICODE UTF-8", "utf-8"),
        ("UNICODE", "utf-8"),
        ("ASCII", "ascii"),
        ("8859/15", "iso-8859-15"),
        (None, "iso-8859-1"),
        ("", "iso-8859-1"),
        ("NONSENSE", "iso-8859-1"),
        ("utf-8", "utf-8"),
    ],
)
def test_codec_for(name: str | None, codec: str) -> None:
    assert codec_for(name) == codec


def test_decode_charsets_and_bom() -> None:
    assert decode("æøå".encode("iso-8859-1"), "8859/1") == "æøå"
    assert decode("æøå".encode(), "UNICODE UTF-8") == "æøå"
    assert decode(b"\xef\xbb\xbf" + "æøå".encode(), "8859/1") == "æøå"
    assert decode("æøå".encode(), "8859/1") == "æøå"  # mis-declared UTF-8 is recognised
    assert decode("æøå".encode("iso-8859-1"), "ASCII") == "æøå"  # never fails
    assert decode("æøå".encode("iso-8859-1"), None, default="iso-8859-1") == "æøå"
    assert decode("æøå".encode("iso-8859-1"), None, default="8859/1") == "æøå"  # HL7 name as default
    assert decode("æøå".encode("iso-8859-1"), None, default="no-such-codec") == "æøå"


def test_parse_accessors_and_z_segments() -> None:
    msg = parse(ADT)
    assert [s.id for s in msg] == ["MSH", "EVN", "PID", "ZXY"]
    assert msg.get("MSH", 9, 2) == "A08"
    assert msg.get("MSH", 1) == "|" and msg.get("MSH", 2) == "^~\\&"
    assert msg.get("PID", 3) == "123"
    assert msg.get("PID", 3, 4, rep=1) == "LAB"
    assert msg.get("PID", 5, 3) == "Anne"
    assert msg.get("PID", 99) == "" and msg.get("OBX", 1) == ""
    assert msg.get("ZXY", 2) == "custom"
    pid = msg.segment("PID")
    assert pid is not None and len(pid.reps(3)) == 2
    assert pid.parts(3, 1)[3] == ["LAB"]


def test_crlf_and_lf_segment_separators() -> None:
    assert parse(ADT.replace(b"\r", b"\r\n")) == parse(ADT) == parse(ADT.replace(b"\r", b"\n"))


def test_non_standard_delimiters() -> None:
    raw = b"MSH#*@!$#A#F#B#C#2026##ORU*R01#1#P#2.5\rPID#1##a*b*c*x$y@second##N\\F\\x\r"
    msg = parse(raw)
    assert msg.delims.field == "#" and msg.delims.component == "*" and msg.delims.repetition == "@"
    assert msg.get("PID", 3, 2) == "b"
    assert msg.get("PID", 3, 4, 2) == "y"
    assert msg.get("PID", 3, rep=1) == "second"
    assert msg.get("PID", 5) == "N\\F\\x"  # "\" is not this message's escape character
    assert msg.get("MSH", 9, 2) == "R01"


def test_short_encoding_characters() -> None:
    msg = parse(b"MSH|^~|A|F|||2026||ADT^A08|1|P|2.3\rPID|1||a\\b&c^x\r")
    assert msg.delims.escape == "" and msg.delims.subcomponent == ""
    assert msg.get("PID", 3) == "a\\b&c"


def test_escape_sequences_resolved_on_read() -> None:
    raw = (
        b"MSH|^~\\&|A|F|||2026||ORU^R01|1|P|2.5\r"
        b"NTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\g\\X0D0A\\h\\H\\bold\\N\\\\Zunknown\\ end\\\r"
    )
    msg = parse(raw)
    assert msg.get("NTE", 3) == "a|b^c&d~e\\f\ng\r\nhbold\\Zunknown\\ end\\"


def test_explicit_null_distinguished_from_empty() -> None:
    msg = parse(b'MSH|^~\\&|A|F|||2026||ADT^A08|1|P|2.5\rPID|1||""|||x^""\r')
    pid = msg.segment("PID")
    assert pid is not None
    assert pid.get(3) == "" and pid.is_null(3)
    assert pid.get(4) == "" and not pid.is_null(4)
    assert pid.is_null(6, 2) and not pid.is_null(6, 1)


def test_serialise_round_trip_of_text() -> None:
    msg = parse(ADT)
    assert serialise(msg) == ADT
    assert parse(serialise(msg)) == msg


def test_parse_text_stops_at_next_message() -> None:
    text = (ADT + ADT.replace(b"CTRL-1", b"CTRL-2")).decode()
    msg = parse_text(text)
    assert msg.get("MSH", 10) == "CTRL-1" and len(msg.all("PID")) == 1


def test_parse_decodes_latin1_by_msh18() -> None:
    raw = "MSH|^~\\&|A|F|||2026||ADT^A08|1|P|2.5||||||8859/1\rPID|1||1||Ødegård^Åse\r".encode("iso-8859-1")
    assert parse(raw).get("PID", 5) == "Ødegård"


def test_split_messages_keeps_trailing_spaces_and_strips_mllp_bytes() -> None:
    raw = b"\x0b" + ADT.replace(b"ZXY|1|custom", b"ZXY|1|custom  ") + b"\x1c\r"
    (out,) = split_messages(raw)
    assert b"ZXY|1|custom  \r" in out and out.startswith(b"MSH|")
