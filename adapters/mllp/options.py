"""The settings of the MLLP listener (:mod:`adapters.mllp`): an HL7 adapter's, where it listens, the limits
that protect it, when it answers, and how it publishes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from adapters.hl7_intake.options import Hl7Options
from adapters.mllp.tls import TlsSettings


class MllpOptions(Hl7Options):
    """The settings of an ``mllp`` adapter but its ``type`` (see :mod:`adapters.mllp`)."""

    source_system: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=2575, ge=0, le=65535)  # 0: any free port (tests)
    tls: TlsSettings | None = None
    max_message_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    #: seconds without a byte before a connection is closed (between frames once everything is answered)
    idle_timeout: float = Field(default=300.0, gt=0)
    #: seconds from a frame's first byte to its end block before the connection is closed
    frame_timeout: float = Field(default=600.0, gt=0)
    #: open connections; one more is closed at once
    max_connections: int = Field(default=512, ge=1)
    #: bytes of frames read and not yet answered per connection before reading pauses
    max_buffered_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    max_pending_per_connection: int = Field(default=1000, ge=1)
    #: when the sender's first answer (AA; enhanced mode: the accept ACK) goes out: after the broker's
    #: confirm, or after the worker's journal commit
    ack_after: Literal["broker", "commit"] = "broker"
    #: seconds an answer waits for the journal commit (ack_after commit, enhanced-mode application ACK)
    commit_timeout: float = Field(default=30.0, gt=0)
    #: how often the listener looks up the commits its connections wait for (one query for all of them)
    commit_poll_ms: float = Field(default=5.0, gt=0)
    max_batch: int = Field(default=500, ge=1)
    max_inflight_batches: int = Field(default=8, ge=1)
    #: how long to keep retrying a publish while the bus is unavailable before dropping the connection
    bus_retry_seconds: float = Field(default=30.0, ge=0)
    dedup_cache_size: int = Field(default=100_000, ge=0)
    #: how long a new message waits for the store's duplicate look-up before it is published anyway (0:
    #: publish at once, the look-up runs meanwhile; the ACK still carries the code the look-up finds)
    dedup_lookup_budget_ms: float = Field(default=0.0, ge=0)
    drain_timeout: float = Field(default=30.0, gt=0)
    #: the interpreter's thread switch interval while a listener runs (process-wide). Mapping threads
    #: in the same process hold the GIL for up to this long each time the listener wants it back.
    gil_switch_interval_ms: float = Field(default=0.5, gt=0, le=100)

    def published_limits(self) -> dict[str, int]:
        """The largest envelope (:mod:`engine.limits`): one message (left unset: lowered to fit the bus)."""
        return {"max_message_bytes": self.max_message_bytes}


__all__ = ["MllpOptions"]
