"""Start-up check: every adapter's limits fit what one bus message can carry.

An envelope travels as one bus message (on RabbitMQ an AMQP message, alone or in a frame; a frame never
grows past ``frame_bytes`` unless one envelope alone is larger): its raw bytes plus its metadata (ids,
names, attributes as JSON), for which :data:`ENVELOPE_OVERHEAD` bytes are reserved. The largest bus
message is ``bus.max_message_bytes`` on RabbitMQ (set it to the broker's ``max_message_size``: 128 MiB
by default on RabbitMQ 3.8-3.13, 16 MiB on 4.x) and :data:`EMBEDDED_MAX_MESSAGE_BYTES` on the embedded
bus. A config whose adapter may publish more (an ``hl7-file`` or ``mllp`` ``max_message_bytes``, a
``kith-file`` ``max_bytes``, a ``csv`` ``max_line_bytes``...) is refused when it is loaded, naming the
adapter and the field, instead of failing every publish of such an input at run time.

What an adapter may publish: its settings' ``published_limits()`` (``{field: largest raw bytes}``)
when it has one (``hl7-file``, ``csv``, and a third-party adapter may add it); else the known fields of
the built-in kinds (:data:`KNOWN_FIELDS`: the smallest of them bounds what is read and published).
"""

from __future__ import annotations

from typing import Any

from engine.errors import ConfigError

#: bytes reserved beside an envelope's raw bytes for its metadata and the wire's length prefixes
ENVELOPE_OVERHEAD = 16 * 1024
#: the embedded bus keeps each envelope in one SQLite row and reads batches of them into memory
EMBEDDED_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
#: adapter kind -> fields bounding the raw bytes of one envelope (the smallest one applies)
KNOWN_FIELDS: dict[str, tuple[str, ...]] = {
    "mllp": ("max_message_bytes",),
    "kith-file": ("max_bytes", "max_file_bytes"),
}


def bus_message_bytes(bus: Any) -> tuple[int, str]:
    """The largest bus message and the setting it comes from."""
    if getattr(bus, "kind", None) == "rabbitmq":
        return int(bus.max_message_bytes), "bus.max_message_bytes"
    return EMBEDDED_MAX_MESSAGE_BYTES, "the embedded bus's limit"


def published_limits(settings: Any) -> dict[str, int]:
    """``{field: largest raw bytes of one envelope}`` for one adapter's settings (empty: unknown)."""
    own = getattr(settings, "published_limits", None)
    if callable(own):
        return dict(own())
    fields = [f for f in KNOWN_FIELDS.get(getattr(settings, "type", ""), ()) if getattr(settings, f, None)]
    if not fields:
        return {}
    smallest = min(fields, key=lambda f: int(getattr(settings, f)))
    return {smallest: int(getattr(settings, smallest))}


def problems(config: Any) -> list[str]:
    """What in ``config`` the bus cannot carry (empty: everything fits)."""
    largest, where = bus_message_bytes(config.bus)
    room = largest - ENVELOPE_OVERHEAD
    out: list[str] = []
    frame = getattr(config.bus, "frame_bytes", None)
    if frame is not None and frame + config.bus.frame_envelopes * ENVELOPE_OVERHEAD > largest:
        out.append(f"field 'bus.frame_bytes': a frame of {frame} bytes and {config.bus.frame_envelopes} "
                   f"envelopes does not fit one bus message ({where} = {largest})")
    for name, settings in config.adapters.items():
        for field, need in published_limits(settings).items():
            if need > room:
                out.append(f"adapter {name!r}, field {field!r}: envelopes of up to {need} bytes do not fit one bus "
                           f"message ({where} = {largest}, less {ENVELOPE_OVERHEAD} for the envelope's metadata)")
    return out


def check_bus_capacity(config: Any, source: str = "<config>") -> Any:
    """Return ``config`` when the bus can carry every adapter's envelopes; else raise ConfigError."""
    found = problems(config)
    if found:
        raise ConfigError("\n".join(f"{source}: {p}" for p in found))
    return config


__all__ = [
    "EMBEDDED_MAX_MESSAGE_BYTES",
    "ENVELOPE_OVERHEAD",
    "KNOWN_FIELDS",
    "bus_message_bytes",
    "check_bus_capacity",
    "problems",
    "published_limits",
]
