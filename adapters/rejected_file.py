"""A file with no message in it, as the one envelope that makes it a dead letter.

A directory adapter that finds nothing it can publish in a file (empty, random bytes, no MSH, no usable
CSV header) still publishes the file once, as one envelope carrying its bytes and a
:class:`engine.rejection.Rejection`: the worker archives it raw and dead-letters it unmapped, so
``enjournal dead-letters`` shows it and ops can replay it. Only after the confirm does the file move to
``error/`` with its ``.reason`` file (what the KITH adapter does for a document it cannot read).

Its bytes travel only up to the adapter's envelope limit; a larger file is published without them (the
rejection says so, in sizes) and is kept whole in ``error/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from adapters.files import InboxFile
from engine.rejection import Rejection


@dataclass(frozen=True)
class RejectedFile:
    """What of a rejected file is published: its bytes (empty when over the limit) and why."""

    raw: bytes
    rejection: Rejection


def rejected_file(reader: BinaryIO, f: InboxFile, rejection: Rejection, limit: int, field: str) -> RejectedFile | None:
    """The file ``f`` (read from the start of ``reader``, a reader of its open descriptor) as it is to be
    published with ``rejection``: whole when it has at most ``limit`` bytes (the setting ``field``), else
    without its bytes. None when it is not what was opened any more (its writer is still at work)."""
    if f.size > limit:
        note = f"file of {f.size} bytes > {field}={limit}, published without its bytes (kept in error/)"
        text = f"{rejection.text}; {note}" if rejection.text else note
        return RejectedFile(b"", Rejection(code=rejection.code, text=text))
    reader.seek(0)
    raw = reader.read(f.size + 1)
    if len(raw) != f.size or f.changed():
        return None
    return RejectedFile(raw, rejection)


__all__ = ["RejectedFile", "rejected_file"]
