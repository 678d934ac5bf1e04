"""Streaming reader for delimited text exports (CSV), constant memory whatever the file size.

* Encodings: ``auto`` = UTF-8 (with or without BOM) when the whole file decodes, else Windows-1252
  (else ISO-8859-1 when the file holds bytes cp1252 leaves undefined); or one named explicitly.
  :func:`scan` decodes the file once, in blocks, while computing its sha256, so a bad byte is
  found before anything is published.
* Delimiter: configured, or sniffed among ``;`` ``,`` and tab from the first lines (the candidate
  giving the most columns consistently across complete sample rows).
* Quoted fields with embedded newlines (``csv`` module, ``newline=""``); empty lines are skipped.
* Header names are normalised (:func:`mappings.csv_decl.normalise_column`: BOM, case, spaces).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Self

from engine.errors import ParseError
from mappings.csv_decl import CANDIDATE_DELIMITERS, normalise_column

BLOCK = 1 << 20
SAMPLE_CHARS = 64 * 1024
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")


@dataclass(frozen=True)
class FileFacts:
    sha256: str
    size: int
    encoding: str


def scan(path: Path, encoding: str = "auto") -> FileFacts:
    """sha256, size and the effective encoding of ``path``, reading it once in blocks.

    Raises :class:`ParseError` (``ENCODING_ERROR``) when an explicit encoding does not decode.
    """
    h = hashlib.sha256()
    size = 0
    utf8: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("utf-8")() if encoding == "auto" else None
    named = None if encoding == "auto" else codecs.getincrementaldecoder(encoding)()
    cp1252_ok, first = True, b""
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
            first = first or block[:3]
            size += len(block)
            if named is not None:
                _decode(named, block, size)
            if utf8 is not None:
                utf8 = _try_utf8(utf8, block)
                cp1252_ok = cp1252_ok and not any(b in block for b in _CP1252_UNDEFINED)
    if named is not None:
        _decode(named, b"", size, final=True)
    return FileFacts(h.hexdigest(), size, encoding if named else _auto(utf8, cp1252_ok, first))


def _decode(dec: codecs.IncrementalDecoder, block: bytes, pos: int, final: bool = False) -> None:
    try:
        dec.decode(block, final)
    except UnicodeDecodeError:
        raise ParseError(f"bytes do not decode in the configured encoding near byte {pos}",
                         code="ENCODING_ERROR") from None


def _try_utf8(dec: codecs.IncrementalDecoder | None, block: bytes) -> codecs.IncrementalDecoder | None:
    if dec is None:
        return None
    try:
        dec.decode(block)
        return dec
    except UnicodeDecodeError:
        return None


def _auto(utf8: codecs.IncrementalDecoder | None, cp1252_ok: bool, first: bytes) -> str:
    if utf8 is not None:
        try:
            utf8.decode(b"", True)
            return "utf-8-sig" if first.startswith(codecs.BOM_UTF8) else "utf-8"
        except UnicodeDecodeError:
            pass
    return "cp1252" if cp1252_ok else "iso-8859-1"


def sniff_delimiter(sample: str) -> str:
    """The candidate delimiter giving the widest consistent rows in ``sample`` (the file's first chars)."""
    best, best_score = CANDIDATE_DELIMITERS[0], (-1, -1)
    complete = sample[: sample.rfind("\n") + 1] or sample
    for d in CANDIDATE_DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(complete, newline=""), delimiter=d) if r][:50]
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        consistent = sum(1 for r in rows if len(r) == width)
        score = (consistent if width > 1 else 0, width)
        if score > best_score:
            best, best_score = d, score
    return best


@dataclass
class CsvFile:
    """An open export: normalised header, delimiter, encoding; :meth:`rows` streams the data rows."""

    path: Path
    encoding: str
    delimiter: str
    raw_header: list[str]
    header: list[str]
    _bin: BinaryIO = field(repr=False)
    _reader: Iterator[list[str]] = field(repr=False)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(data row number from 1, cells) for every non-empty row; raises ParseError CSV_MALFORMED."""
        n = 0
        try:
            for row in self._reader:
                if not row or (len(row) == 1 and not row[0]):
                    continue
                n += 1
                yield n, row
        except csv.Error:
            raise ParseError(f"malformed CSV after data row {n}", code="CSV_MALFORMED") from None

    def bytes_done(self) -> int:
        return self._bin.tell()

    def close(self) -> None:
        self._bin.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_csv(path: Path, encoding: str, delimiter: str | None = None) -> CsvFile:
    """Open ``path`` (``encoding`` already resolved by :func:`scan`) and read its header."""
    binf = path.open("rb")
    text = io.TextIOWrapper(binf, encoding=encoding, newline="")
    try:
        delim = delimiter or sniff_delimiter(text.read(SAMPLE_CHARS))
        text.seek(0)
        reader = csv.reader(text, delimiter=delim)
        raw = next((r for r in reader if r and any(c.strip() for c in r)), None)
    except (csv.Error, UnicodeDecodeError):
        binf.close()
        raise ParseError("unreadable CSV header", code="CSV_MALFORMED") from None
    if raw is None:
        binf.close()
        raise ParseError("no header line", code="CSV_EMPTY")
    raw = [c.replace("\ufeff", "") for c in raw]
    return CsvFile(path, encoding, delim, raw, [normalise_column(c) for c in raw], binf, reader)
