"""Which mapping a file is for, from its content (``enjournal map FILE`` without ``--mapping``).

* HL7 v2 (``hl7v2``): the first thing that is not whitespace, MLLP framing, a blank line or a comment
  line (``// ...``, ``/* ... */``, also spanning lines) is ``MSH``, ``FHS`` or ``BHS``.
* XML (``kith``): the first thing after a byte order mark and whitespace is ``<``, in UTF-8 (with or
  without BOM), UTF-16 LE/BE (with BOM, or without one when the bytes are ``<`` in UTF-16 as the XML
  specification's appendix F detects it) or UTF-32 with BOM.
* Anything else is CSV (``csv``).

Only the head of the file is looked at, so a large file costs no more than a small one.
"""

from __future__ import annotations

import codecs

__all__ = ["HEAD_BYTES", "sniff_mapping"]

#: how much of a file is looked at
HEAD_BYTES = 8192
_HL7_STARTS = ("MSH", "FHS", "BHS")
_BLANK = " \t\r\n\x0b\x1c\x00\ufeff"
#: byte order marks, longest first (a UTF-32 LE BOM starts like a UTF-16 LE one)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _head_text(raw: bytes) -> str:
    """The head of ``raw`` as text: by its BOM, else UTF-16 when it looks like ``<`` in UTF-16, else Latin-1
    (every byte a character, so ASCII markers are found whatever the real 8-bit encoding)."""
    head = raw[:HEAD_BYTES]
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return head[len(bom) :].decode(codec, errors="ignore")
    if head.startswith(b"<\x00") and head[2:3] != b"\x00":
        return head.decode("utf-16-le", errors="ignore")
    if head.startswith(b"\x00<"):
        return head.decode("utf-16-be", errors="ignore")
    return head.decode("latin-1")


def _skip_comments(text: str) -> str:
    """``text`` from its first character that is neither blank nor inside a ``//`` or ``/* */`` comment."""
    while True:
        text = text.lstrip(_BLANK)
        if text.startswith("//"):
            ends = [i for i in (text.find("\r"), text.find("\n")) if i >= 0]
            text = text[min(ends) + 1 :] if ends else ""
        elif text.startswith("/*"):
            end = text.find("*/", 2)
            text = text[end + 2 :] if end >= 0 else ""
        else:
            return text


def sniff_mapping(raw: bytes) -> str:
    """``hl7v2``, ``kith`` or ``csv`` for the file content ``raw`` (see the module docstring)."""
    text = _head_text(raw)
    start = text.lstrip(_BLANK)
    if start.startswith("<"):
        return "kith"
    if _skip_comments(start).startswith(_HL7_STARTS):
        return "hl7v2"
    return "csv"
