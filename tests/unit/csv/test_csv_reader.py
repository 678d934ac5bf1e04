"""Reader: encodings (æøå survive), delimiter sniffing, embedded newlines, header normalisation."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.csv.reader import open_csv, scan, sniff_delimiter
from engine.errors import ParseError
from mappings.csv_decl import normalise_column

TEXT = 'Navn;By;Notat\r\nÅse Ødegård;Tromsø;"to linjer;\r\nmed æøå"\r\nBjørn;Ålesund;enkel\r\n'


@pytest.mark.parametrize(
    "encoding,bom,expected",
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", b"\xef\xbb\xbf", "utf-8-sig"),
        ("cp1252", b"", "cp1252"),
    ],
)
def test_auto_encoding_keeps_norwegian_letters(tmp_path: Path, encoding: str, bom: bytes, expected: str) -> None:
    p = tmp_path / "f.csv"
    p.write_bytes(bom + TEXT.encode(encoding))
    facts = scan(p)
    assert facts.encoding == expected
    with open_csv(p, facts.encoding) as f:
        assert f.header == ["navn", "by", "notat"]
        rows = list(f.rows())
    assert rows[0] == (1, ["Åse Ødegård", "Tromsø", "to linjer;\r\nmed æøå"])
    assert rows[1] == (2, ["Bjørn", "Ålesund", "enkel"])


def test_latin1_with_bytes_cp1252_lacks(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_bytes("a;b\næ\x81;ø\n".encode("iso-8859-1"))
    assert scan(p).encoding == "iso-8859-1"
    p.write_bytes("a;b\næøå;ÆØÅ\n".encode("iso-8859-1"))
    with open_csv(p, "iso-8859-1") as f:
        assert list(f.rows()) == [(1, ["æøå", "ÆØÅ"])]


def test_explicit_encoding_that_does_not_decode(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_bytes("a;b\næ;ø\n".encode("cp1252"))
    with pytest.raises(ParseError) as e:
        scan(p, "utf-8")
    assert e.value.code == "ENCODING_ERROR"


def test_sha256_and_size(tmp_path: Path) -> None:
    import hashlib

    p = tmp_path / "f.csv"
    data = TEXT.encode() * 1000
    p.write_bytes(data)
    facts = scan(p)
    assert (facts.sha256, facts.size) == (hashlib.sha256(data).hexdigest(), len(data))


@pytest.mark.parametrize("delim", [";", ",", "\t"])
def test_sniff_delimiter(delim: str) -> None:
    rows = [["id", "navn", "dato"], ["1", "Åse, Ø", "01.02.2026"], ["2", "Kåre", "02.02.2026"]]
    text = "\n".join(delim.join(f'"{c}"' if ("," in c or ";" in c) else c for c in r) for r in rows) + "\n"
    assert sniff_delimiter(text) == delim


def test_sniff_prefers_consistent_rows() -> None:
    # a comma inside names but semicolon-delimited
    text = "id;navn\n1;Hansen, Åse\n2;Olsen, Per\n3;Berg, Kari\n"
    assert sniff_delimiter(text) == ";"


def test_header_normalisation(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_bytes(b"\xef\xbb\xbf" + "  Pasient ID ;FØDSELSNUMMER;Dato  tid\n1;2;3\n".encode())
    with open_csv(p, scan(p).encoding) as f:
        assert f.header == ["pasient_id", "fødselsnummer", "dato_tid"]
        assert f.raw_header[0] == "  Pasient ID "
    assert normalise_column("\ufeffPasient  ID") == "pasient_id"


def test_blank_lines_are_skipped_and_rows_numbered(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_text("a;b\n\n1;2\n\n3;4\n", encoding="utf-8")
    with open_csv(p, "utf-8") as f:
        assert [n for n, _ in f.rows()] == [1, 2]


def test_empty_file_has_no_header(tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_bytes(b"")
    with pytest.raises(ParseError) as e:
        open_csv(p, scan(p).encoding)
    assert e.value.code == "CSV_EMPTY"


def test_streaming_reads_incrementally(tmp_path: Path) -> None:
    p = tmp_path / "big.csv"
    with p.open("w", encoding="utf-8") as f:
        f.write("a;b\n")
        for i in range(200_000):
            f.write(f"{i};æøå\n")
    with open_csv(p, "utf-8") as f:
        it = f.rows()
        next(it)
        assert f.bytes_done() < p.stat().st_size // 4  # not the whole file in memory
        assert sum(1 for _ in it) == 199_999
