"""The charset rule every adapter and mapping shares (HL7 v2, KITH XML, CSV), and its codec table.

Bytes that do not fit the charset their sender declared are read with the charset that fits them, never
into C1 control characters, and the caller is told (``<declared>-><used>``), so replay gives the same
text whichever adapter received it (:func:`decode_checked`):

1. a UTF-8 BOM wins over the declaration (the BOM is dropped);
2. bytes declared ASCII or single-byte Latin (:data:`LATIN`) that are valid UTF-8 with multi-byte
   sequences are UTF-8 (a common mis-declaration: such sequences are very unlikely in real Latin text);
3. otherwise the declared codec, when it decodes and (for ASCII and ISO-8859-x) the bytes hold no C1
   control byte 0x80-0x9F: ISO-8859 gives those no letter, so a sender that writes them uses another
   charset (most often Windows-1252, whose letters and quotes live there);
4. otherwise the first that decodes of: UTF-8, the Windows code page extending the declared ISO charset
   (:data:`WINDOWS`; Windows-1252 for the others), and last the declared codec (Latin-1 when it fails)
   with every C1 control replaced by U+FFFD.

:func:`fits` answers "would the rule keep the declared codec?" without decoding in the common case, for
callers that only need the flag (the HL7 adapters' ``charset_repaired``) or that hand the bytes to a
parser that decodes them itself (lxml).

Codec names are compared by their :func:`codecs.lookup` name (``latin-1``, ``ISO-8859-1`` and
``iso8859_1`` are one codec); the names a caller passes in are the ones it gets back.
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache
from typing import NamedTuple

BOM8 = b"\xef\xbb\xbf"


@lru_cache(maxsize=256)
def canonical(codec: str) -> str | None:
    """The :func:`codecs.lookup` name of ``codec`` (``ISO-8859-1`` -> ``iso8859-1``); None when unknown."""
    try:
        return codecs.lookup(codec).name
    except (LookupError, ValueError, TypeError):
        return None


def _names(*codecs_: str) -> frozenset[str]:
    return frozenset(name for c in codecs_ if (name := canonical(c)) is not None)


#: one byte per character: a text's length is its length in bytes
SINGLE_BYTE = _names("ascii", *(f"iso-8859-{i}" for i in range(1, 17) if i != 12), *(f"cp125{i}" for i in range(9)))
#: ASCII and single-byte Latin: valid UTF-8 with multi-byte sequences declared as one of these is UTF-8
LATIN = _names("ascii", "iso-8859-1", "iso-8859-15", "cp1252")
#: ASCII and ISO-8859-x: a byte 0x80-0x9F is a C1 control there, never a letter
ISO = frozenset(name for name in SINGLE_BYTE if name == "ascii" or name.startswith("iso8859"))
#: every ASCII byte is the same character (the rule keeps the declared codec for ASCII bytes)
ASCII_SUPERSETS = SINGLE_BYTE | _names("utf-8")
#: the Windows code page that extends an ISO charset with letters in 0x80-0x9F (others: Windows-1252)
WINDOWS = {
    canonical(iso): cp
    for iso, cp in (
        ("iso-8859-2", "cp1250"),
        ("iso-8859-5", "cp1251"),
        ("iso-8859-7", "cp1253"),
        ("iso-8859-9", "cp1254"),
        ("iso-8859-8", "cp1255"),
        ("iso-8859-6", "cp1256"),
        ("iso-8859-4", "cp1257"),
        ("iso-8859-13", "cp1257"),
    )
}

_C1_BYTES = bytes(range(0x80, 0xA0))
#: bytes 0x80-0xBF: UTF-8 continuation bytes, ISO's C1 controls and Windows-1252's undefined bytes
_MID_BYTES = bytes(range(0x80, 0xC0))
_C1_TEXT = re.compile("[\x80-\x9f]")


class Decoded(NamedTuple):
    """Decoded text, the codec that fitted the bytes and the codec declared (a tuple: it is made for every
    message a mapping decodes)."""

    text: str
    codec: str
    declared: str
    replaced: bool = False  # bytes no candidate charset gives a letter became U+FFFD

    @property
    def repaired(self) -> bool:
        """The bytes were not in the declared charset: decoded with :attr:`codec` instead, or replaced."""
        return self.replaced or canonical(self.codec) != canonical(self.declared)

    def flag(self) -> str:
        """``<declared>-><used>`` (e.g. ``iso-8859-1->cp1252``; ``+replaced``), for an envelope attribute."""
        return f"{self.declared}->{self.codec}" + ("+replaced" if self.replaced else "")


def has_c1(raw: bytes) -> bool:
    """Whether ``raw`` holds a byte 0x80-0x9F (``bytes.translate`` runs in C over the bytes, without the
    per-call set-up of a regular expression search)."""
    return _holds(raw, _C1_BYTES)


def _holds(raw: bytes, some: bytes) -> bool:
    return len(raw.translate(None, some)) != len(raw)


def decode_checked(raw: bytes, declared: str) -> Decoded:
    """Decode ``raw`` declared as the Python codec ``declared`` by the rule of the module docstring."""
    name = canonical(declared)
    if raw.startswith(BOM8):
        return Decoded(raw[3:].decode("utf-8", errors="replace"), "utf-8", declared)
    if raw.isascii():
        try:
            return Decoded(raw.decode(declared), declared, declared)
        except (UnicodeDecodeError, LookupError):
            pass
    if name in LATIN:
        try:
            return Decoded(raw.decode("utf-8"), "utf-8", declared)
        except UnicodeDecodeError:
            pass
    if not (name in ISO and has_c1(raw)):
        try:
            return Decoded(raw.decode(declared).lstrip("\ufeff"), declared, declared)
        except (UnicodeDecodeError, LookupError):
            pass
    return _refit(raw, declared, name)


def _refit(raw: bytes, declared: str, name: str | None) -> Decoded:
    """Rule 4: the bytes are not in the declared charset."""
    for attempt in ("utf-8", WINDOWS.get(name, "cp1252")):
        if canonical(attempt) != name:
            try:
                return Decoded(raw.decode(attempt).lstrip("\ufeff"), attempt, declared)
            except UnicodeDecodeError:
                continue
    try:
        text, used = raw.decode(declared), declared
    except (UnicodeDecodeError, LookupError):
        text, used = raw.decode("iso-8859-1"), "iso-8859-1"
    return Decoded(_C1_TEXT.sub("\ufffd", text), used, declared, replaced=True)


def fits(raw: bytes, declared: str) -> bool:
    """``not decode_checked(raw, declared).repaired``, decoding only when it cannot tell from the bytes.

    ASCII bytes fit every ASCII superset. Latin bytes without any byte 0x80-0xBF hold no UTF-8 multi-byte
    sequence (each needs a continuation byte there), no C1 control and none of Windows-1252's undefined
    bytes, so they fit every Latin codec but ASCII. Anything else is decoded."""
    name = canonical(declared)
    if name in ASCII_SUPERSETS and raw.isascii():
        return True
    if name in LATIN and not raw.startswith(BOM8) and not _holds(raw, _MID_BYTES):
        return name != "ascii"
    return not decode_checked(raw, declared).repaired


def repair_flag(raw: bytes, declared: str) -> str | None:
    """``<declared>-><used>`` when the bytes do not fit ``declared`` (see :func:`fits`), else None."""
    return None if fits(raw, declared) else decode_checked(raw, declared).flag()


__all__ = [
    "ASCII_SUPERSETS",
    "BOM8",
    "ISO",
    "LATIN",
    "SINGLE_BYTE",
    "WINDOWS",
    "Decoded",
    "canonical",
    "decode_checked",
    "fits",
    "has_c1",
    "repair_flag",
]
