"""What text the journal can hold, and what happens to text it cannot.

PostgreSQL's ``text`` and ``varchar`` cannot hold U+0000 (NUL) and enforce column widths; SQLite takes
both. So that both databases keep the same journal (and a PostgreSQL store never fails a batch on
one message), the rule is applied before the database sees a value, per kind of value:

* **Clinical content and identifiers** (record content, record keys, subjects, the identifiers of
  identity links, the source message id): a value holding NUL, or longer than its column, makes the
  message a dead letter, ``TEXT_NOT_STORABLE``, with a reason naming the record and the field path
  (never the value). Changing clinical text silently is not an option; the raw bytes are archived,
  so the message can be replayed once the sender or the mapping is fixed. The mapping step rejects
  it when the input holds a 0x00 byte or the source id or an identity link does not fit
  (:func:`suspect`, a few cheap tests per message); NUL that only decoding makes (an HL7 ``\\X00\\``
  escape) and over-long record keys and subjects are found by the store where it serialises and
  reads them anyway, and that one envelope is isolated and dead-lettered with the same code. Other
  control characters are stored as they are; strings with lone surrogates never get this far
  (pydantic refuses them when the records are built).
* **Envelope metadata** (every string field of the envelope: its id, trace id, adapter, mapping, source
  system, content type, charset, sha256 and dedup key, and the reception time's text; the attributes
  travel as JSON, where NUL is already the escape ``\\u0000``): made storable before it is written, by
  :func:`storable_envelope`, once per
  envelope (the worker does it as it takes a delivery; the store again for an envelope it isolates).
  NUL becomes the six characters ``\\u0000``, and a value longer than its column keeps its start plus a
  digest of the whole, so two different long values stay different. An envelope id that does not fit
  therefore never stops its batch: the envelope is archived and dead-lettered under the fitted id.
* **Attachment bytes** (:attr:`MappingResult.attachments`) are binary: never looked at here. Their
  references in records (content type, description, title) are record content like any other; the content
  type of a stored attachment's row is metadata, made storable by :func:`fit` (:mod:`engine.store.attachments`).
* Anything else a database refuses is found by the store's isolation of the failing envelope
  (:mod:`engine.store.isolate`): ``STORE_REJECTED``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, timedelta
from typing import Any

from engine.envelope import Envelope
from engine.errors import PermanentError
from engine.ids import log_safe
from engine.model import Identifier, MappingResult
from engine.store import schema as s

CODE = "TEXT_NOT_STORABLE"
NUL = "\x00"
NUL_JSON = b"\\u0000"  # how NUL appears in the records' JSON content
_ESCAPED = "\\u0000"


def _width(col: Any) -> int:
    return int(col.type.length)


KEY = _width(s.record_versions.c.record_key)
SUBJECT = _width(s.record_versions.c.subject_key)
SOURCE_ID = _width(s.record_versions.c.source_message_id)
ID_KEY, ID_SYSTEM, ID_VALUE = (
    _width(s.identifiers.c.id_key),
    _width(s.identifiers.c.system),
    _width(s.identifiers.c.value),
)
DEDUP = _width(s.raw_archive.c.dedup_key)
RECEIVED_AT = _width(s.raw_archive.c.received_at)
_MINUTE = timedelta(minutes=1)
DEAD_CODE = _width(s.dead_letters.c.reason_code)
#: the envelope's string fields and the width of their ``raw_archive`` column (every other table stores the
#: id, the adapter and the dedup key in columns of the same width)
ENVELOPE_FIELDS: tuple[tuple[str, int], ...] = tuple(
    (name, _width(s.raw_archive.c["envelope_id" if name == "id" else name]))
    for name in (
        "id",
        "trace_id",
        "adapter",
        "mapping",
        "source_system",
        "content_type",
        "charset",
        "sha256",
        "dedup_key",
    )
)


class TextNotStorable(PermanentError):
    """A mapped value the journal cannot hold; the message says where (a field path), never what."""

    code = CODE


def fit(value: str, width: int | None = None) -> str:
    """``value`` made storable: NUL escaped as ``\\u0000``; past ``width``, its start and a digest of it all."""
    if NUL in value:
        value = value.replace(NUL, _ESCAPED)
    if width is not None and len(value) > width:
        # log_safe: the digest is logged with the value (an envelope id) and must never look like a national id
        digest = log_safe(hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32])
        value = value[: width - 33] + "#" + digest
    return value


def _unfit(value: str | None, width: int) -> bool:
    return value is not None and (len(value) > width or NUL in value)


# -- the checks, one each: the mapping step, the store's hot path and problem() all use these -----------
def key_fits(key: str) -> bool:
    """A record key fits its column (NUL in it shows in the content: see :data:`NUL_JSON`)."""
    return len(key) <= KEY


def subject_fits(subject_key: str) -> bool:
    """A record's subject key (``system|value``) fits its column."""
    return len(subject_key) <= SUBJECT


def source_fits(source_id: str | None) -> bool:
    """A source message id fits its column and holds no NUL (it is not part of the content)."""
    return not _unfit(source_id, SOURCE_ID)


def identifier_problem(ident: Identifier) -> str | None:
    """Where an identity link's identifier does not fit (``value: NUL character``), or None."""
    if _unfit(ident.value, ID_VALUE):
        return f"value: {_what(ident.value, ID_VALUE)}"
    if _unfit(ident.system, ID_SYSTEM):
        return f"system: {_what(ident.system, ID_SYSTEM)}"
    if len(ident.system) + 1 + len(ident.value) > ID_KEY:
        return f"key: longer than {ID_KEY} characters"
    return None


def storable_envelope(env: Envelope) -> Envelope:
    """``env`` itself, or (one of its string fields holds NUL or is longer than its column) a copy with every
    such field made storable (:func:`fit`); a reception time whose text would not fit its column (a UTC
    offset with fractions of a second, as a foreign envelope may carry) becomes the same instant in UTC."""
    changes: dict[str, Any] = {}
    for name, width in ENVELOPE_FIELDS:
        value = getattr(env, name)
        if value is not None and (len(value) > width or NUL in value):
            changes[name] = fit(value, width)
    offset = env.received_at.utcoffset()
    if offset is not None and offset % _MINUTE and len(env.received_at.isoformat()) > RECEIVED_AT:
        changes["received_at"] = env.received_at.astimezone(UTC)
    return env.model_copy(update=changes) if changes else env


def suspect(raw: bytes, result: MappingResult) -> bool:
    """Whether ``result`` (mapped from ``raw``) may hold text the journal cannot store: what the mapping step
    asks of every message, so it is cheap and needs no serialised content. A NUL byte in the input, a
    source message id or an identity link that does not fit: then :func:`check` looks at everything.
    NUL that only decoding makes (an HL7 ``\\X00\\`` escape) is found by the store, which serialises the
    content anyway and looks for the JSON escape of NUL; so are over-long record keys and subjects."""
    if b"\x00" in raw or not source_fits(result.source_message_id):
        return True
    return any(identifier_problem(link.a) or identifier_problem(link.b) for link in result.links)


def problem(result: MappingResult, contents: Sequence[bytes]) -> str | None:
    """Where ``result`` holds text the journal cannot store (``record 2 (person) identifiers[0].value: NUL
    character``), or None. ``contents`` are the records' JSON content, in order (records past the last one
    given are not looked at: ``[]`` checks the links alone). Thorough: see :func:`suspect` for the cheap
    question."""
    subject: Any = None
    source: Any = None
    for i, (rec, content) in enumerate(zip(result.records, contents, strict=False)):
        if NUL_JSON in content or not key_fits(rec.key):
            where = _locate(rec.model_dump(exclude={"provenance"}), KEY)
            if where is not None:
                return f"record {i} ({rec.kind}) {where}"
        if rec.subject is not subject:
            subject = rec.subject
            if not subject_fits(subject.key):
                return f"record {i} ({rec.kind}) subject: longer than {SUBJECT} characters"
        sid = rec.provenance.source_message_id
        if sid is not source:
            source = sid
            if not source_fits(sid):
                return f"record {i} ({rec.kind}) provenance.source_message_id: {_what(sid or '', SOURCE_ID)}"
    for i, link in enumerate(result.links):
        for end, ident in (("a", link.a), ("b", link.b)):
            where = identifier_problem(ident)
            if where is not None:
                return f"identity link {i} {end}.{where}"
    return None


def check(result: MappingResult, contents: Sequence[bytes]) -> None:
    """Raise :class:`TextNotStorable` when :func:`problem` finds something."""
    where = problem(result, contents)
    if where is not None:
        raise TextNotStorable(where)


def reject(result: MappingResult, contents: Sequence[bytes]) -> TextNotStorable:
    """The error for a key the store found too long (saying where, when :func:`problem` can tell)."""
    return TextNotStorable(problem(result, contents) or "a key or id longer than its column")


def _what(value: str, width: int) -> str:
    return "NUL character" if NUL in value else f"longer than {width} characters"


def _locate(node: Any, key_width: int, path: str = "") -> str | None:
    """The path of the first string under ``node`` holding NUL (or the record key past its width)."""
    if isinstance(node, str):
        if NUL in node:
            return f"{path}: NUL character"
        return f"{path}: longer than {key_width} characters" if path == "key" and len(node) > key_width else None
    if isinstance(node, dict):
        items: Any = ((f"{path}.{k}" if path else str(k), v) for k, v in node.items())
    elif isinstance(node, (list, tuple)):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(node))
    else:
        return None
    for sub, value in items:
        found = _locate(value, key_width, sub)
        if found is not None:
            return found
    return None
