"""Attachments: the bytes of a PDF, an image or another document a message carries, kept once per sha256.

A mapping returns them in :attr:`engine.model.MappingResult.attachments` (decoding base64 is their one
copy); records refer to them by :class:`engine.model.AttachmentRef` (``Document.attachments``,
``Observation.value_attachment``, ``Report.attachments``). On the way to the store:

* The mapping step (:func:`screen`, called by :class:`engine.worker.Mapper`) checks every carried
  attachment's sha256 against its bytes and every reference against what the message carries (for a
  message that carries none, the store checks its references where it serialises the records:
  :func:`check_refs`); a message that does not hold together is a dead letter:
  ``ATTACHMENT_HASH_MISMATCH`` (the bytes do not hash to their sha256), ``ATTACHMENT_SIZE_MISMATCH`` (a
  reference's size is not its bytes' length), ``ATTACHMENT_MISSING`` (a reference to bytes the message
  does not carry; a reference made by :meth:`AttachmentRef.named`, size 0 and the sha256 of nothing,
  needs none), ``ATTACHMENT_UNREFERENCED`` (bytes no record refers to: whose they are is unknown). An
  attachment larger than the store's ``max_attachment_bytes`` is not stored: the records referring to it
  keep their reference and carry the flag ``ATTACHMENT_TOO_LARGE`` (its bytes stay in the raw archive).
* The store (:func:`write`) inserts the attachments of a batch into ``attachments`` in the same transaction
  as the batch's records, once per sha256 (``ON CONFLICT DO NOTHING``, after one look-up of the batch's
  hashes so that bytes already stored are not sent again). An envelope the store isolates and dead-letters
  writes no attachment; one another envelope of the batch also carries is stored for that other one.

Attachment bytes are binary: no text check (:mod:`engine.store.text`) ever looks at them; their content
type is metadata, made storable like an envelope's. Reading (:func:`read`) is by sha256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from engine.errors import PermanentError
from engine.limits import ATTACHMENT_DEFAULT_MAX_BYTES
from engine.model import RECORD_TYPES, Attachment, AttachmentRef, MappingResult
from engine.outcome import Outcome
from engine.store import schema as s
from engine.store import text
from engine.store.bulk import Bulk, Row, select_in

DEFAULT_MAX_BYTES = ATTACHMENT_DEFAULT_MAX_BYTES
#: the flag of a record whose attachment was too large to be stored
TOO_LARGE = "ATTACHMENT_TOO_LARGE"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: how a reference shows in a record's JSON content (a key: the same text inside a value is escaped)
REF_MARK = b'"sha256":'
_TYPE_WIDTH = int(s.attachments.c.content_type.type.length)  # type: ignore[attr-defined]
_KEY = ("sha256",)


class AttachmentInvalid(PermanentError):
    """A message whose attachments and references do not hold together; the message says where, by index."""

    code = "ATTACHMENT_HASH_MISMATCH"


def refs(rec: Any) -> Iterator[tuple[str, AttachmentRef]]:
    """The attachment references of a record, each with its field path."""
    for name in _ref_fields(type(rec)):
        value = getattr(rec, name)
        if isinstance(value, AttachmentRef):
            yield name, value
        elif value:
            for i, ref in enumerate(value):
                yield f"{name}[{i}]", ref


def _fields_of(cls: type) -> tuple[str, ...]:
    fields = getattr(cls, "model_fields", {})
    return tuple(name for name in ("value_attachment", "attachments") if name in fields)


#: the fields of each record class that hold attachment references (most classes: none)
_REF_FIELDS: dict[type, tuple[str, ...]] = {cls: _fields_of(cls) for cls in RECORD_TYPES.values()}


def _ref_fields(cls: type) -> tuple[str, ...]:
    """Known per class, so a record without such a field costs one dictionary look-up."""
    found = _REF_FIELDS.get(cls)
    return _fields_of(cls) if found is None else found


def screen(result: MappingResult, max_bytes: int = DEFAULT_MAX_BYTES) -> MappingResult:
    """``result`` itself, or (an attachment is larger than ``max_bytes``) a copy without that attachment whose
    records referring to it carry :data:`TOO_LARGE`. Raise :class:`AttachmentInvalid` when an attachment's
    bytes do not hash to its sha256 or a reference does not match the bytes carried. A result carrying no
    attachment is returned at once (the hot path): its references are checked by the store, which finds
    them in the records' serialised content (:func:`check_refs`)."""
    if not result.attachments:
        return result
    carried: dict[str, Attachment] = {}
    for i, att in enumerate(result.attachments):
        if hashlib.sha256(att.data).hexdigest() != att.sha256:
            raise AttachmentInvalid(f"attachment {i}: the bytes do not hash to its sha256")
        carried[att.sha256] = att
    too_large = {sha for sha, att in carried.items() if len(att.data) > max_bytes}
    flag: list[int] = []
    referenced: set[str] = set()
    for n, rec in enumerate(result.records):
        shas = _checked_refs(n, rec, carried)
        referenced |= shas
        if shas & too_large:
            flag.append(n)
    if len(referenced & carried.keys()) < len(carried):
        raise AttachmentInvalid("an attachment no record refers to", code="ATTACHMENT_UNREFERENCED")
    if not too_large:
        return result
    records = list(result.records)
    for n in flag:
        rec = records[n]
        if TOO_LARGE not in rec.flags:
            records[n] = rec.model_copy(update={"flags": (*rec.flags, TOO_LARGE)})
    kept = tuple(a for a in result.attachments if a.sha256 not in too_large)
    return result.model_copy(update={"records": tuple(records), "attachments": kept})


def check_refs(result: MappingResult) -> None:
    """Raise :class:`AttachmentInvalid` when a reference of ``result``'s records does not match the bytes it
    carries (``ATTACHMENT_MISSING``, ``ATTACHMENT_SIZE_MISMATCH``). Records flagged :data:`TOO_LARGE` are left
    out: :func:`screen` checked them before it set the flag and dropped their bytes."""
    carried = {att.sha256: att for att in result.attachments}
    for n, rec in enumerate(result.records):
        if TOO_LARGE not in rec.flags:
            _checked_refs(n, rec, carried)


def _checked_refs(n: int, rec: Any, carried: dict[str, Attachment]) -> set[str]:
    """The sha256 of record ``n``'s references, each checked against ``carried``."""
    out = set()
    for path, ref in refs(rec):
        _check_ref(ref, carried.get(ref.sha256), f"record {n} ({rec.kind}) {path}")
        out.add(ref.sha256)
    return out


def _check_ref(ref: AttachmentRef, att: Attachment | None, where: str) -> None:
    if att is None:
        if ref.sha256 != EMPTY_SHA256:
            raise AttachmentInvalid(f"{where}: no bytes for this sha256 in the message", code="ATTACHMENT_MISSING")
        size = 0
    else:
        size = len(att.data)
    if ref.size != size:
        raise AttachmentInvalid(f"{where}: size is not the length of its bytes", code="ATTACHMENT_SIZE_MISMATCH")


def write(conn: sa.Connection, bulk: Bulk, outcomes: Sequence[Outcome]) -> int:
    """Insert the attachments of ``outcomes`` not stored yet, once per sha256; return how many were new. Rows:
    (sha256, content type, size, the envelope that brought it, the subject of the first record referring to
    it, bytes); the bytes are passed to the driver as they are (no copy here)."""
    rows: dict[str, Row] = {}
    for o in outcomes:
        result = o.result
        if result is None or not result.attachments:
            continue
        subjects = {ref.sha256: rec.subject.key for rec in reversed(result.records) for _, ref in refs(rec)}
        for att in result.attachments:
            subject = subjects.get(att.sha256)
            if att.sha256 not in rows and subject is not None:  # screen() refuses bytes no record refers to
                content_type = text.fit(att.content_type, _TYPE_WIDTH)
                rows[att.sha256] = (att.sha256, content_type, len(att.data), o.envelope.id, subject, att.data)
    if not rows:
        return 0
    for sha in stored(conn, list(rows)):
        del rows[sha]
    return bulk(conn, s.attachments, list(rows.values()), known_new=True) if rows else 0


def read(conn: sa.Connection, sha256: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of the attachment ``sha256``, or None."""
    t = s.attachments
    row = conn.execute(sa.select(t.c.content_type, t.c.data).where(t.c.sha256 == sha256.lower())).first()
    return None if row is None else (row[0], bytes(row[1]))


def stored(conn: sa.Connection, sha256s: Sequence[str]) -> set[str]:
    """Which of ``sha256s`` are stored."""
    return {r[0] for r in select_in(conn, s.attachments, _KEY, _KEY, sha256s)}


def subject(conn: sa.Connection, sha256: str) -> str | None:
    """The subject key (``system|value``) stored with the attachment ``sha256``, or None."""
    t = s.attachments
    return conn.execute(sa.select(t.c.subject_key).where(t.c.sha256 == sha256.lower())).scalar()
