"""The settings of the KITH file adapter (:mod:`adapters.kith_file`): an inbox's, the AppRec outbox and the
identities the receipts name, XSD validation and the limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from adapters.durable import Sync
from adapters.files import FileDropSettings


class KithFileOptions(FileDropSettings):
    """The settings of a ``kith-file`` adapter but its ``type`` (see :mod:`adapters.kith_file`)."""

    mapping: str = "kith"
    outbox: Path
    validate_xsd: bool = False
    xsd_dir: Path | None = None  # default: adapters/kith_file/schemas
    max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)  # parse limit; larger is rejected (KITH_TOO_LARGE)
    max_batch: int = Field(default=200, ge=1, le=5000)  # files published per confirmed batch
    #: how a batch's receipts are made durable (adapters.durable): one syncfs of the outbox's filesystem
    #: (auto on Linux >= 5.8), or an fsync per file by a thread pool (when the outbox shares a filesystem
    #: with a busy database, whose dirty pages a syncfs would wait for too)
    receipt_sync: Sync = Sync.AUTO
    sender_her_id: str | None = None  # our identity, when the message names no receiver
    sender_name: str | None = None
    receiver_her_id: str | None = None  # the partner's identity, when the message names no sender
    receiver_name: str | None = None

    def dirs(self) -> dict[str, Path]:
        return {**super().dirs(), "outbox": self.outbox}

    def published_limits(self) -> dict[str, int]:
        """The largest envelope (:mod:`engine.limits`): nothing over the smaller of the two limits is read."""
        if self.max_bytes <= self.max_file_bytes:
            return {"max_bytes": self.max_bytes}
        return {"max_file_bytes": self.max_file_bytes}

    def mapping_options(self) -> dict[str, Any]:
        """``ctx.options`` for the worker's kith mapping: it needs none."""
        return {}


__all__ = ["KithFileOptions"]
