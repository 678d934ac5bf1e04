"""The settings of the HL7 v2 file adapter (:mod:`adapters.hl7_file`): an inbox's, an HL7 adapter's, and
the limits of one message and of one publish group."""

from __future__ import annotations

from pydantic import Field

from adapters.files import FileDropSettings
from adapters.hl7_intake.options import Hl7Options


class Hl7FileOptions(FileDropSettings, Hl7Options):
    """The settings of an ``hl7-file`` adapter but its ``type`` (see :mod:`adapters.hl7_file`)."""

    #: one message inside a file; a larger one is rejected (HL7_MESSAGE_TOO_LARGE) without its bytes
    max_message_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    #: messages published together (one call, confirmed before the next group is sent)
    publish_group_messages: int = Field(default=1000, ge=1, le=100_000)
    publish_group_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)

    def published_limits(self) -> dict[str, int]:
        """The largest envelope (:mod:`engine.limits`): one message, never a whole file."""
        return {"max_message_bytes": self.max_message_bytes}


__all__ = ["Hl7FileOptions"]
