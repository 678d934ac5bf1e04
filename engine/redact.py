"""Keeping personal data out of what ops see: file references for logs, and reason texts.

* A file name may carry a patient's name and national number (``Kari Nordmann 01810012345.xml``,
  ``svar 018100 12345.xml``, ``svar 01810012345.Nordmann``). Logs never show it: :func:`file_ref` gives an
  opaque reference, the same for the same name within one process (so the lines about one file can be
  followed), keyed with a random per-process secret (so it cannot be reversed by trying every national
  number), plus the name's suffix only when it is a known file type (:data:`KEPT_SUFFIXES`). The
  archive keeps the real name beside the envelope id, where access is controlled.
* A reason (dead letter, ``.reason`` file, AppRec, NAK) is built from codes and positions. Whatever a
  library quotes into a message anyway goes through :func:`safe_reason`, which drops quoted text and
  masks every long digit run, also when separators split it into groups (:data:`DIGIT_GROUPS`, the
  same pattern the log masking uses).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import PurePath

_KEY = os.urandom(32)


def _rekey() -> None:
    global _KEY
    _KEY = os.urandom(32)


os.register_at_fork(after_in_child=_rekey)

#: 11 digits or more, also split into groups by up to two separators between digits (``090454 07176``,
#: ``0904.54-07176``, ``090454  07176``, ``0904/54/07176``): the length of a national identity number;
#: byte counts and positions in reasons are shorter
DIGIT_GROUPS = re.compile(r"(?<![\d])\d(?:[ .\-_/]{0,2}\d){10,}(?![\d])")
_QUOTES = "'\"‘’“”`´"
#: suffixes a file reference keeps (lower-cased): file types. Any other suffix may be part of a name.
KEPT_SUFFIXES = frozenset(
    {
        ".xml",
        ".hl7",
        ".er7",
        ".msg",
        ".csv",
        ".tsv",
        ".txt",
        ".dat",
        ".edi",
        ".json",
        ".reason",
        ".tmp",
        ".temp",
        ".part",
        ".partial",
        ".filepart",
    }
)
_FILE_REF = re.compile(r"^file-[0-9a-f]{10}(?:" + "|".join(re.escape(s) for s in sorted(KEPT_SUFFIXES)) + ")?$")


def file_ref(name: str | PurePath) -> str:
    """An opaque reference for a file name in logs: ``file-<10 hex>``, plus its suffix when it is one of
    :data:`KEPT_SUFFIXES` (``.xml``; ``.XML`` becomes ``.xml``)."""
    text = name.name if isinstance(name, PurePath) else str(name)
    digest = hmac.new(_KEY, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:10]
    suffix = PurePath(text).suffix.lower()
    return f"file-{digest}{suffix if suffix in KEPT_SUFFIXES else ''}"


def is_file_ref(value: str) -> bool:
    """Whether ``value`` is already a reference made by :func:`file_ref`."""
    return bool(_FILE_REF.match(value))


def mask_digit_groups(text: str) -> str:
    """Replace every run of 11 or more digits (also split into groups) by ``#`` per digit."""
    return DIGIT_GROUPS.sub(lambda m: re.sub(r"\d", "#", m.group(0)), text)


def drop_quoted(text: str) -> str:
    """Replace everything from the first quote character to the last by ``'…'``: a quoted value may hold
    quotes itself (``'O'Hara 01810012345'``), so pairing quotes cannot tell where a value ends."""
    marks = [i for i, ch in enumerate(text) if ch in _QUOTES]
    if len(marks) < 2:
        return text
    return f"{text[: marks[0]]}'…'{text[marks[-1] + 1 :]}"


def safe_reason(text: str) -> str:
    """A reason text fit for ops: quoted text dropped (``'…'``, see :func:`drop_quoted`), long digit runs
    masked, control characters removed, one line."""
    text = drop_quoted(text)
    text = mask_digit_groups(text)
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()
