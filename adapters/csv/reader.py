"""Streaming reader for delimited text exports (CSV), constant memory whatever the file size.

* Encodings: ``auto`` = UTF-8 (with or without BOM) when the whole file decodes, else Windows-1252
  (else ISO-8859-1 when the file holds bytes cp1252 leaves undefined); or one named explicitly.
  :func:`scan` decodes the file once, in blocks, while computing its sha256, so a bad byte is
  found before anything is published.
* Delimiter: configured, or sniffed among ``;`` ``,`` and tab from the first lines (the candidate
  giving the most columns consistently across complete sample rows).
* Quoted fields with embedded newlines (``csv`` module, ``newline=""``); empty lines are skipped.
* A record is bounded: a line (or a quoted record over several lines) of more than ``max_line_bytes``
  is never held whole: it is read in pieces of at most that size up to its end and reported as
  ``CSV_LINE_TOO_LONG`` with its row and line number (:class:`LineTooLong`), and reading goes on at the
  next line (a quoted record cut that way may leave its tail to be read as rows of its own, which the
  row checks then reject).
* Header names are normalised (:func:`mappings.csv_decl.normalise_column`: BOM, case, spaces).
* A file is a path, or an opener (:data:`Source`): an inbox file is read through its open descriptor
  (:meth:`adapters.files.InboxFile.reopen`), never by its name again.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Self, TextIO, TypeAlias

from engine.errors import ParseError
from engine.rejection import Rejection
from mappings import charset
from mappings.csv_decl import CANDIDATE_DELIMITERS, normalise_column

BLOCK = 1 << 20
SAMPLE_CHARS = 64 * 1024
DEFAULT_MAX_LINE_BYTES = 1 << 20
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
#: a file to read: a path, or a callable that opens the file (from its start) for reading
Source: TypeAlias = Path | Callable[[], BinaryIO]


def _open(source: Source) -> BinaryIO:
    return source.open("rb") if isinstance(source, Path) else source()


@dataclass(frozen=True)
class FileFacts:
    sha256: str
    size: int
    encoding: str


def scan(source: Source, encoding: str = "auto") -> FileFacts:
    """sha256, size and the effective encoding of ``source``, reading it once in blocks.

    Raises :class:`ParseError` (``ENCODING_ERROR``) when an explicit encoding does not decode.
    """
    h = hashlib.sha256()
    size = 0
    utf8: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("utf-8")() if encoding == "auto" else None
    named = None if encoding == "auto" else codecs.getincrementaldecoder(encoding)()
    cp1252_ok, first = True, b""
    with _open(source) as f:
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
        raise ParseError(
            f"bytes do not decode in the configured encoding near byte {pos}", code="ENCODING_ERROR"
        ) from None


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


class LineTooLong(Exception):
    """A record longer than ``max_line_bytes``: its data row and the file line where it started."""

    code = "CSV_LINE_TOO_LONG"

    def __init__(self, line: int, limit: int) -> None:
        super().__init__(f"line {line}: more than {limit} bytes")
        self.line, self.limit = line, limit

    def rejection(self, row: int) -> Rejection:
        """The rejection of data row ``row`` (sizes and positions only: the record was never read whole)."""
        return Rejection(
            code=self.code, text=f"row {row} (line {self.line}) has more than max_line_bytes={self.limit} bytes"
        )


class BoundedLines:
    """The text's lines for ``csv.reader``, none held longer than ``limit`` bytes.

    Counts the bytes of the record being read (:meth:`record_done` resets it); when it passes the limit
    the rest of the current line is skipped in pieces and :class:`LineTooLong` is raised, which the csv
    reader passes on (it starts a fresh record at its next call)."""

    def __init__(self, text: TextIO, encoding: str, limit: int) -> None:
        self._text, self._limit = text, limit
        self._single = charset.canonical(encoding) in charset.SINGLE_BYTE  # bytes = characters
        self.line = 0  # file lines read
        self.last = 0  # bytes of the last whole record
        self.last_line = 0  # the file line where it started
        self._record = 0  # bytes of the record being read
        self._record_line = 1

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> str:
        line = self._text.readline(self._limit + 1)
        if not line:
            raise StopIteration
        self.line += 1
        if self._record == 0:
            self._record_line = self.line
        self._record += len(line) if self._single or line.isascii() else len(line.encode("utf-8"))
        if self._record > self._limit:
            if not line.endswith(("\n", "\r")):
                self._skip_rest()
            start, self._record = self._record_line, 0
            raise LineTooLong(start, self._limit)
        return line

    def record_done(self) -> None:
        self.last, self.last_line, self._record = self._record, self._record_line, 0

    def _skip_rest(self) -> None:
        while (piece := self._text.readline(self._limit + 1)) and not piece.endswith(("\n", "\r")):
            pass


@dataclass
class CsvFile:
    """An open export: normalised header, delimiter, encoding; :meth:`rows` streams the data rows."""

    encoding: str
    delimiter: str
    raw_header: list[str]
    header: list[str]
    _bin: BinaryIO = field(repr=False)
    _reader: Iterator[list[str]] = field(repr=False)
    _lines: BoundedLines = field(repr=False)

    def rows(self, too_long: Callable[[int, LineTooLong], None] | None = None) -> Iterator[tuple[int, list[str]]]:
        """(data row number from 1, cells) for every non-empty row; raises ParseError CSV_MALFORMED.

        A record over ``max_line_bytes`` takes a row number too and goes to ``too_long(row, error)``;
        without one it raises ParseError ``CSV_LINE_TOO_LONG``."""
        n = 0
        while True:
            try:
                row = next(self._reader)
            except StopIteration:
                return
            except LineTooLong as exc:
                n += 1
                if too_long is None:
                    raise ParseError(str(exc.rejection(n)), code=exc.code) from None
                too_long(n, exc)
                continue
            except csv.Error:
                raise ParseError(f"malformed CSV after data row {n}", code="CSV_MALFORMED") from None
            self._lines.record_done()
            if not row or (len(row) == 1 and not row[0]):
                continue
            n += 1
            yield n, row

    def bytes_done(self) -> int:
        return self._bin.tell()

    @property
    def last_record_bytes(self) -> int:
        """Bytes of the row :meth:`rows` yielded last (in the file's encoding)."""
        return self._lines.last

    @property
    def line_of_last_record(self) -> int:
        """The file line where the row :meth:`rows` yielded last started."""
        return self._lines.last_line

    def close(self) -> None:
        self._bin.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_csv(
    source: Source, encoding: str, delimiter: str | None = None, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> CsvFile:
    """Open ``source`` (``encoding`` already resolved by :func:`scan`) and read its header."""
    binf = _open(source)
    text = io.TextIOWrapper(binf, encoding=encoding, newline="")
    lines = BoundedLines(text, encoding, max_line_bytes)
    try:
        delim = delimiter or sniff_delimiter(text.read(SAMPLE_CHARS))
        text.seek(0)
        reader = csv.reader(lines, delimiter=delim)
        raw = next((r for r in reader if r and any(c.strip() for c in r)), None)
    except LineTooLong as exc:
        binf.close()
        raise ParseError(f"header {exc}", code=exc.code) from None
    except (csv.Error, UnicodeDecodeError):
        binf.close()
        raise ParseError("unreadable CSV header", code="CSV_MALFORMED") from None
    if raw is None:
        binf.close()
        raise ParseError("no header line", code="CSV_EMPTY")
    lines.record_done()
    raw = [c.replace("\ufeff", "") for c in raw]
    return CsvFile(encoding, delim, raw, [normalise_column(c) for c in raw], binf, reader, lines)
