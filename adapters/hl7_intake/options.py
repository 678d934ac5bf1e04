"""What every HL7 v2 adapter is configured with, and the optional strict profile check.

Both HL7 v2 adapters (``mllp`` and ``hl7-file``) take these settings; :func:`load_strict` loads the
validator of ``strict: true`` once per adapter (:mod:`mappings.hl7v2.strict`, imported only then).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.errors import ConfigError

#: a strict profile check: the problems of one message (``CODE: text`` each), empty when it conforms
StrictCheck = Callable[[bytes], list[str]]


class Hl7Options(BaseModel):
    """Settings every HL7 v2 adapter shares."""

    model_config = ConfigDict(extra="forbid")

    mapping: str = "hl7v2"
    default_charset: str = "iso-8859-1"
    strict: bool = False
    #: MSH-9.1 message types accepted; anything else is answered AR / dead-lettered
    accepted_types: list[str] = Field(default_factory=lambda: ["ADT", "ORU", "MDM"])

    @field_validator("accepted_types")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [t.strip().upper() for t in v if t.strip()]

    def mapping_options(self) -> dict[str, Any]:
        """``ctx.options`` for the worker's hl7v2 mapping (strict ran here already: not repeated)."""
        return {"default_charset": self.default_charset}


def load_strict(options: Hl7Options) -> StrictCheck | None:
    """``validate_strict`` when ``strict`` is on; ConfigError when the validator is not installed."""
    if not options.strict:
        return None
    try:
        check: StrictCheck = importlib.import_module("mappings.hl7v2.strict").validate_strict
    except (ModuleNotFoundError, AttributeError):
        raise ConfigError("strict: true needs mappings.hl7v2.strict.validate_strict") from None
    return check


__all__ = ["Hl7Options", "StrictCheck", "load_strict"]
