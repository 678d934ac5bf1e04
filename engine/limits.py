"""Start-up check: every adapter's limits fit what one bus message can carry.

An envelope travels as one bus message (on RabbitMQ an AMQP message, alone or in a frame; a frame never
grows past ``frame_bytes`` unless one envelope alone is larger): its raw bytes plus its metadata (ids,
names, attributes as JSON), for which :data:`ENVELOPE_OVERHEAD` bytes are reserved. The largest bus
message is ``bus.max_message_bytes`` on RabbitMQ (set it to the broker's ``max_message_size``; the
default, :data:`RABBITMQ_DEFAULT_MESSAGE_BYTES`, is RabbitMQ 4.x's default and below 3.8-3.13's, so it
holds on both) and :data:`EMBEDDED_MAX_MESSAGE_BYTES` on the embedded bus.

What an adapter may publish is its settings' ``published_limits()``: ``{field: largest raw bytes of one
envelope}`` (``hl7-file`` and ``mllp``: ``max_message_bytes``; ``kith-file``: the smaller of ``max_bytes``
and ``max_file_bytes``; ``csv``: what ``max_line_bytes`` lets a chunk grow to; a third-party adapter may
declare its own). When the config is loaded (:func:`fit_to_bus`):

* a limit the config leaves unset, whose field is itself the bound (its value is the published one), is
  lowered to what one bus message carries, so the defaults always fit the bus they run on;
* a limit the config sets and the bus cannot carry is refused, naming the adapter and the field, instead
  of failing every publish of such an input at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.config import EmbeddedBusConfig, EngineConfig, RabbitBusConfig

#: bytes reserved beside an envelope's raw bytes for its metadata and the wire's length prefixes
ENVELOPE_OVERHEAD = 16 * 1024
#: RabbitMQ 4.x's default ``max_message_size``; 3.8-3.13 default to 128 MiB, so it fits both
RABBITMQ_DEFAULT_MESSAGE_BYTES = 16 * 1024 * 1024
#: the largest attachment the store keeps by default (``store.max_attachment_bytes``; scanned reports are a few MB)
ATTACHMENT_DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: the embedded bus keeps each envelope in one SQLite row and reads batches of them into memory
EMBEDDED_MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def bus_message_bytes(bus: EmbeddedBusConfig | RabbitBusConfig) -> tuple[int, str]:
    """The largest bus message and the setting it comes from."""
    if bus.kind == "rabbitmq":
        return bus.max_message_bytes, "bus.max_message_bytes"
    return EMBEDDED_MAX_MESSAGE_BYTES, "the embedded bus's limit"


def envelope_room(bus: EmbeddedBusConfig | RabbitBusConfig) -> int:
    """The largest raw bytes of one envelope the bus carries (its message limit less the metadata)."""
    return bus_message_bytes(bus)[0] - ENVELOPE_OVERHEAD


def lower_unset(config: EngineConfig) -> None:
    """Lower each adapter limit the config leaves unset, and the bus cannot carry, to what it can."""
    room = envelope_room(config.bus)
    for settings in config.adapters.values():
        given = settings.model_fields_set
        for field, need in settings.published_limits().items():
            if need > room and field not in given and getattr(settings, field, None) == need:
                setattr(settings, field, room)


def problems(config: EngineConfig) -> list[str]:
    """What in ``config`` the bus cannot carry (empty: everything fits)."""
    bus = config.bus
    largest, where = bus_message_bytes(bus)
    room = envelope_room(bus)
    out: list[str] = []
    if bus.kind == "rabbitmq" and bus.frame_bytes + bus.frame_envelopes * ENVELOPE_OVERHEAD > largest:
        out.append(
            f"field 'bus.frame_bytes': a frame of {bus.frame_bytes} bytes and {bus.frame_envelopes} "
            f"envelopes does not fit one bus message ({where} = {largest})"
        )
    for name, settings in config.adapters.items():
        for field, need in settings.published_limits().items():
            if need > room:
                out.append(
                    f"adapter {name!r}, field {field!r}: envelopes of up to {need} bytes do not fit one bus "
                    f"message ({where} = {largest}, less {ENVELOPE_OVERHEAD} for the envelope's metadata)"
                )
    return out


def fit_to_bus(config: EngineConfig, source: str = "<config>") -> EngineConfig:
    """``config`` with its unset adapter limits lowered to the bus (:func:`lower_unset`); a ConfigError when
    a limit it sets does not fit."""
    lower_unset(config)
    found = problems(config)
    if found:
        raise ConfigError("\n".join(f"{source}: {p}" for p in found))
    return config
