"""The envelope on the RabbitMQ work queue: metadata and raw bytes in the message body.

One envelope: body = 4-byte big-endian length of the metadata + the metadata as JSON
(``Envelope.headers()``) + the raw bytes; AMQP ``content_type`` = :data:`ENVELOPE_TYPE`. Why not AMQP
headers: a table of eleven headers costs the broker and both pika ends clearly more per message than the
same metadata as JSON in the body (the figures are in docs/performance-history.md).

A **frame** of several envelopes published together (a file's messages, a KITH poll's files, the
MLLP publisher's coalesced batch): body = 4-byte count + for each envelope its 4-byte length and its
one-envelope body; ``content_type`` = :data:`FRAME_TYPE`. The envelope stays the unit of the design
(each has its own id, dedup key, record keys, dead letter and replay); the frame is only how they
travel: one persistent AMQP message, one confirm, one delivery, one ack for all of them. The
broker's work is mostly per AMQP message, so a frame costs it about what one message costs.

Messages in the older form (metadata as AMQP headers, body = the raw bytes, as still published to
the dead-letter queue so it stays readable there) are decoded too, so a queue filled by an older
version drains after an upgrade. An unreadable body becomes one envelope the worker rejects
(``BAD_ENVELOPE``), with the whole body kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from engine.envelope import Envelope, decode_or_reject, reject_unreadable

ENVELOPE_TYPE = "application/vnd.enjournal.envelope+v1"
FRAME_TYPE = "application/vnd.enjournal.envelopes+v1"
_LEN = 4


def encode(env: Envelope) -> bytes:
    """The body of ``env`` on the work queue."""
    meta = orjson.dumps({k: v for k, v in env.headers().items() if v is not None})
    return len(meta).to_bytes(_LEN, "big") + meta + env.raw


def encode_frame(envs: Sequence[Envelope]) -> bytes:
    """The body of a frame holding ``envs`` (in order)."""
    parts = [len(envs).to_bytes(_LEN, "big")]
    for env in envs:
        body = encode(env)
        parts.append(len(body).to_bytes(_LEN, "big"))
        parts.append(body)
    return b"".join(parts)


def _decode_one(body: bytes) -> Envelope:
    size = int.from_bytes(body[:_LEN], "big")
    meta = orjson.loads(body[_LEN : _LEN + size])
    if not isinstance(meta, dict) or _LEN + size > len(body):
        raise ValueError("bad envelope frame")
    return Envelope.from_meta(meta, body[_LEN + size :])


def _decode_frame(body: bytes) -> list[Envelope]:
    view = memoryview(body)
    count, pos, out = int.from_bytes(view[:_LEN], "big"), _LEN, []
    for _ in range(count):
        size = int.from_bytes(view[pos : pos + _LEN], "big")
        pos += _LEN
        if size < _LEN or pos + size > len(body):
            raise ValueError("bad frame")
        out.append(_decode_one(body[pos : pos + size]))
        pos += size
    if pos != len(body) or not out:
        raise ValueError("bad frame")
    return out


def decode_all(content_type: str | None, headers: dict[str, Any] | None, body: bytes) -> list[Envelope]:
    """The envelopes of a delivered message in any form (one, a frame, the old header form); never
    raises: a damaged body gives one envelope the worker rejects, holding the whole body."""
    if content_type == FRAME_TYPE:
        try:
            return _decode_frame(body)
        except Exception:  # noqa: BLE001 - a damaged message must not stop a consumer
            return [reject_unreadable(body, None)]
    return [decode(content_type, headers, body)]


def decode(content_type: str | None, headers: dict[str, Any] | None, body: bytes) -> Envelope:
    """The envelope of a delivered one-envelope message, in either form; never raises."""
    if content_type != ENVELOPE_TYPE:
        return decode_or_reject(headers or {}, body)
    try:
        return _decode_one(body)
    except Exception:  # noqa: BLE001 - a damaged message must not stop a consumer
        return reject_unreadable(body, None)
