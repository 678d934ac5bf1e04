"""Bytes outside the declared charset: decoded with the charset that fits, never into C1 controls, flagged."""

from __future__ import annotations

import pytest

from mappings.hl7v2.parser import decode_checked, parse

NAME = "Ødegård “Åse” – Kværnes €"  # quotes, dash and euro live in Windows-1252's 0x80-0x9F


def _c1(text: str) -> bool:
    return any("\x80" <= ch <= "\x9f" for ch in text)


@pytest.mark.parametrize("declared", ["8859/1", None, "", "ASCII", "8859/15"])
def test_cp1252_bytes_declared_latin(declared: str | None) -> None:
    d = decode_checked(NAME.encode("cp1252"), declared)
    assert d.text == NAME and d.codec == "cp1252" and d.repaired and not _c1(d.text)


@pytest.mark.parametrize("declared", ["8859/1", None, "ASCII", "8859/15", "CP1252"])
def test_utf8_bytes_declared_latin(declared: str | None) -> None:
    d = decode_checked(NAME.encode("utf-8"), declared)
    assert d.text == NAME and d.codec == "utf-8" and d.repaired


def test_latin1_declared_latin1_is_not_flagged() -> None:
    d = decode_checked("Ødegård Åse".encode("iso-8859-1"), "8859/1")
    assert (d.text, d.repaired) == ("Ødegård Åse", False)


def test_cp1252_bytes_declared_utf8() -> None:
    d = decode_checked("Ødegård – Åse".encode("cp1252"), "UNICODE UTF-8")
    assert d.text == "Ødegård – Åse" and d.flag() == "utf-8->cp1252"


def test_bytes_no_charset_knows_become_replacement_not_controls() -> None:
    raw = b"A\x81B\x8dC\xe6"  # 0x81/0x8D are undefined in Windows-1252, invalid UTF-8
    d = decode_checked(raw, "8859/1")
    assert d.text == "A\ufffdB\ufffdCæ" and d.repaired and not _c1(d.text)


def test_ascii_and_bom() -> None:
    assert not decode_checked(b"MSH|plain", "8859/1").repaired
    d = decode_checked(b"\xef\xbb\xbf" + "Å".encode(), "UNICODE UTF-8")
    assert (d.text, d.repaired) == ("Å", False)


def test_parse_maps_the_repaired_text() -> None:
    raw = ("MSH|^~\\&|A|F|||2026||ADT^A08|1|P|2.5||||||8859/1\rPID|1||1||Ødegård–Hansen^Åse\r").encode("cp1252")
    assert parse(raw).get("PID", 5) == "Ødegård–Hansen"
