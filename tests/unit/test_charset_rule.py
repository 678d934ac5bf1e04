"""The charset rule every adapter shares (mappings.charset): one rule, one codec table, a cheap flag."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hl7_intake import Hl7Options, triage
from mappings import charset
from mappings.hl7v2.parser import decode_checked as hl7_decode_checked
from mappings.kith.xml import parse_document

DECLARED = [
    "ascii",
    "us-ascii",
    "iso-8859-1",
    "latin-1",
    "ISO8859_1",
    "iso-8859-15",
    "cp1252",
    "windows-1252",
    "utf-8",
    "iso-8859-2",
    "iso-8859-5",
    "cp1250",
]
#: byte soups that hit each branch of the rule: ASCII, Latin letters, C1 bytes, UTF-8 sequences, BOM
ALPHABET = [
    b"A",
    b"|",
    b"\r",
    b"\xe5",
    b"\xf8",
    b"\xd8",
    b"\xc3",
    b"\xa5",
    b"\x98",
    b"\x80",
    b"\x81",
    b"\x9d",
    b"\xb0",
    b"\xe2\x80\x93",
    b"\xef\xbb\xbf",
    b"\xff",
]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET), max_size=12), st.sampled_from(DECLARED))
def test_the_cheap_test_agrees_with_the_rule(parts: list[bytes], declared: str) -> None:
    raw = b"".join(parts)
    d = charset.decode_checked(raw, declared)
    assert charset.fits(raw, declared) == (not d.repaired)
    assert charset.repair_flag(raw, declared) == (d.flag() if d.repaired else None)
    if charset.canonical(d.codec) != "utf-8":  # valid UTF-8 may spell a C1 control; no other codec gives one
        assert not any("\x80" <= ch <= "\x9f" for ch in d.text)


@pytest.mark.parametrize("alias", ["latin-1", "latin1", "ISO-8859-1", "iso8859_1", "l1"])
def test_codec_names_are_compared_by_codec_not_by_spelling(alias: str) -> None:
    name = "Ødegård Åse".encode()
    assert charset.decode_checked(name, alias).codec == "utf-8"  # rule 2 for every spelling of Latin-1
    assert charset.canonical(alias) in charset.LATIN and charset.canonical(alias) in charset.SINGLE_BYTE


def test_hl7_kith_and_the_flag_read_the_same_letters() -> None:
    text = "Ødegård – “Åse”"
    for raw in (text.encode("cp1252"), text.encode("utf-8")):
        hl7 = hl7_decode_checked(raw, "8859/1")
        xml = b'<?xml version="1.0" encoding="ISO-8859-1"?><Message>' + raw + b"</Message>"
        assert hl7.text == text == parse_document(xml).root.text


def test_kith_declared_ascii_with_latin_bytes_is_read_by_the_rule_not_rejected() -> None:
    xml = '<?xml version="1.0" encoding="US-ASCII"?><Message>Ødegård</Message>'.encode("cp1252")
    parsed = parse_document(xml)
    assert parsed.root.text == "Ødegård" and parsed.charset_repaired == "us-ascii->windows-1252"


def test_triage_sets_the_flag_while_building_the_envelope() -> None:
    """MLLP and the file adapter share triage: both carry charset_repaired, and only when repaired."""
    msg = "MSH|^~\\&|A|F|||2026||ADT^A08|1|P|2.5||||||8859/1\rPID|1||1||{}^Åse\r"
    opts = Hl7Options()
    fits = triage(msg.format("Ødegård").encode("iso-8859-1"), adapter="t", options=opts, source_system=None)
    cp = triage(msg.format("Ødegård–Hansen").encode("cp1252"), adapter="t", options=opts, source_system=None)
    utf8 = triage(msg.format("Ødegård").encode("utf-8"), adapter="t", options=opts, source_system=None)
    assert "charset_repaired" not in fits.envelope.attributes
    assert cp.envelope.attributes["charset_repaired"] == "iso-8859-1->cp1252"
    assert utf8.envelope.attributes["charset_repaired"] == "iso-8859-1->utf-8"
