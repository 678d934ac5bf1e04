"""The envelope: the unit on the bus.

It carries the raw bytes exactly as received (plus the declared charset) and the metadata a
worker needs to redo its work: which adapter and mapping, when it was received, a sha256 of the
bytes and a trace id. Replay of an archived envelope is the same code path as live traffic.
A message its adapter refused carries the :class:`engine.rejection.Rejection` (the worker dead-letters it
without mapping).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from engine.ids import log_safe
from engine.model import MapContext
from engine.randomid import random_bytes
from engine.rejection import Rejection

#: the attribute in which envelopes of the previous version carried a rejection (``CODE: text``)
LEGACY_REJECT = "reject"


def new_id() -> str:
    """A random id (uuid4 hex) that can never look like a national identity number in a log.
    Built from the random bytes directly, which is cheaper than ``uuid.uuid4().hex``, and every envelope
    takes two ids on the intake's hot path (the bytes: :func:`engine.randomid.random_bytes`)."""
    b = bytearray(random_bytes(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    return log_safe(b.hex())


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=new_id)
    adapter: str
    mapping: str
    source_system: str | None = None
    content_type: str
    received_at: datetime
    charset: str | None = None
    raw: bytes
    sha256: str
    trace_id: str = Field(default_factory=new_id)
    #: sender-side identity of the message (e.g. ``HL7|app|facility|MSH-10``) for duplicate detection
    dedup_key: str | None = None
    #: small adapter facts: file name, row offset, ... never patient data
    attributes: dict[str, str] = Field(default_factory=dict)
    #: set when the adapter refused the message: the worker archives and dead-letters it without mapping
    rejection: Rejection | None = None

    @classmethod
    def build(
        cls,
        raw: bytes,
        *,
        adapter: str,
        mapping: str,
        content_type: str,
        source_system: str | None = None,
        charset: str | None = None,
        received_at: datetime | None = None,
        dedup_key: str | None = None,
        attributes: dict[str, str] | None = None,
        id: str | None = None,
        rejection: Rejection | None = None,
    ) -> Envelope:
        return cls.model_validate(
            {
                "id": id or new_id(),
                "adapter": adapter,
                "mapping": mapping,
                "content_type": content_type,
                "source_system": source_system,
                "received_at": received_at or datetime.now(UTC),
                "charset": charset,
                "raw": raw,
                "sha256": hashlib.sha256(raw).hexdigest(),
                "dedup_key": dedup_key,
                "attributes": attributes or {},
                "rejection": rejection,
            }
        )

    def headers(self) -> dict[str, Any]:
        """Everything but the bytes, as flat JSON-friendly values (AMQP headers, queue-table columns); the
        rejection, as JSON text, only when there is one."""
        h = {
            "id": self.id,
            "adapter": self.adapter,
            "mapping": self.mapping,
            "source_system": self.source_system,
            "content_type": self.content_type,
            "received_at": self.received_at.isoformat(),
            "charset": self.charset,
            "sha256": self.sha256,
            "trace_id": self.trace_id,
            "dedup_key": self.dedup_key,
            "attributes": orjson.dumps(self.attributes).decode(),
        }
        if self.rejection is not None:
            h["rejection"] = self.rejection.model_dump_json()
        return h

    @classmethod
    def from_headers(cls, headers: dict[str, Any], raw: bytes) -> Envelope:
        def _s(v: Any) -> Any:
            return v.decode() if isinstance(v, (bytes, bytearray)) else v

        return cls.from_meta({k: _s(v) for k, v in headers.items()}, raw)

    @classmethod
    def from_meta(cls, h: dict[str, Any], raw: bytes) -> Envelope:
        """:meth:`from_headers` for values that are already ``str`` (the work queue's JSON metadata).

        An envelope of the previous version carried its rejection as the attribute ``reject``
        (``CODE: text``): it becomes the :attr:`rejection`, and the attribute is dropped."""
        attributes = orjson.loads(h.get("attributes") or "{}")
        stated = h.get("rejection")
        rejection = Rejection.model_validate_json(stated) if stated else None
        if isinstance(attributes, dict) and LEGACY_REJECT in attributes:
            legacy = Rejection.from_reason(str(attributes.pop(LEGACY_REJECT)))
            rejection = rejection or legacy
        # model_validate(dict): the same validation as cls(**kwargs) at a lower cost (per envelope in
        # every worker)
        return cls.model_validate(
            {
                "id": h["id"],
                "adapter": h["adapter"],
                "mapping": h["mapping"],
                "source_system": h.get("source_system"),
                "content_type": h["content_type"],
                "received_at": datetime.fromisoformat(h["received_at"]),
                "charset": h.get("charset"),
                "raw": raw,
                "sha256": h["sha256"],
                "trace_id": h.get("trace_id") or new_id(),
                "dedup_key": h.get("dedup_key"),
                "attributes": attributes,
                "rejection": rejection,
            }
        )

    def context(self, options: dict[str, Any] | None = None) -> MapContext:
        return MapContext(
            envelope_id=self.id,
            adapter=self.adapter,
            source_system=self.source_system,
            received_at=self.received_at,
            charset=self.charset,
            options=options or {},
        )

    def __repr__(self) -> str:
        return f"Envelope(id={self.id}, adapter={self.adapter}, {len(self.raw)} bytes)"

    __str__ = __repr__


def decode_or_reject(headers: dict[str, Any], raw: bytes) -> Envelope:
    """The envelope from bus headers, or (headers unreadable) one that the worker archives and dead-letters."""
    try:
        return Envelope.from_headers(headers, raw)
    except Exception:  # noqa: BLE001 - a foreign or damaged message must not stop a consumer
        return reject_unreadable(raw, headers.get("adapter"))


def reject_unreadable(raw: bytes, adapter: Any) -> Envelope:
    """An envelope for bytes whose metadata could not be read: the worker archives and dead-letters it."""
    return Envelope.build(
        raw,
        adapter=adapter if isinstance(adapter, str) and adapter else "unknown",
        mapping="none",
        content_type="application/octet-stream",
        rejection=Rejection(code="BAD_ENVELOPE", text="unreadable envelope headers"),
    )
