"""Why an adapter refused a message: a stable reason code and a short text, carried by its envelope.

An adapter publishes what it refuses too (an HL7 message answered AR, a KITH document answered with AppRec
status 2, a CSV row that fails its checks), so that the worker archives and dead-letters it without mapping.
The envelope carries the refusal as :attr:`engine.envelope.Envelope.rejection`; the worker stores
``code`` as the dead letter's reason code and ``str(rejection)`` (``CODE: text``) as its reason. The text
holds codes and positions, never field values (the worker passes it through
:func:`engine.redact.safe_reason` as well).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

CODE_PATTERN = r"^[A-Z][A-Z0-9_]*$"
_CODE = re.compile(CODE_PATTERN)
#: the reason code of a legacy ``reject`` attribute whose code part is not a reason code
LEGACY_CODE = "ADAPTER_REJECTED"


class Rejection(BaseModel):
    """A refused message's reason: ``code`` (``HL7_NO_MSH``, ``KITH_XSD_INVALID``, ...) and ``text``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    text: str = ""

    def __str__(self) -> str:
        """``CODE: text``, or ``CODE`` alone when there is no text."""
        return f"{self.code}: {self.text}" if self.text else self.code

    @classmethod
    def from_reason(cls, reason: str) -> Rejection:
        """A rejection from its ``CODE: text`` form (a producer that reports text, and envelopes of the
        previous version, whose ``reject`` attribute held that text). A code part that is not a reason
        code makes the whole text the text of :data:`LEGACY_CODE`."""
        code, _, text = reason.partition(":")
        code = code.strip()
        if _CODE.fullmatch(code):
            return cls(code=code, text=text.strip())
        return cls(code=LEGACY_CODE, text=reason.strip())


__all__ = ["CODE_PATTERN", "LEGACY_CODE", "Rejection"]
