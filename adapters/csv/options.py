"""The settings of the CSV export adapter (:mod:`adapters.csv`): an inbox's, the schedule, how the file is
read, how rows are published, and the declarative mapping's spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator

from adapters.csv.schedule import validate_cron
from adapters.csv.tables import load_table
from adapters.files import FileDropSettings
from mappings.csv_decl import CsvSpec

#: the suffix of a file's reject report (beside it in the inbox, then in archive/); never picked up
REJECTS_SUFFIX = ".rejects.csv"
#: a chunk closes once its rows may take this many bytes in the envelope, even short of ``batch_rows``
CHUNK_BYTES = 8 * 1024 * 1024


class CsvOptions(FileDropSettings):
    """The settings of a ``csv`` adapter but its ``type`` (see :mod:`adapters.csv`)."""

    mapping: str = "csv"
    pattern: str = "*.csv"
    schedule: str | None = None
    delimiter: Literal[";", ",", "\t", "|"] | None = None
    encoding: Literal["auto", "utf-8", "utf-8-sig", "cp1252", "iso-8859-1"] = "auto"
    state_dir: Path | None = None
    batch_rows: int = Field(default=500, ge=1, le=100_000)
    chunks_per_publish: int = Field(default=8, ge=1, le=1000)
    publish_attempts: int = Field(default=5, ge=1, le=100)
    max_file_bytes: int = Field(default=64 * 1024**3, gt=0)
    #: one record (a line, or a quoted record over several lines); a longer one is rejected, never read whole
    max_line_bytes: int = Field(default=1024 * 1024, ge=1024)
    spec: CsvSpec
    _options: dict[str, Any] | None = PrivateAttr(default=None)

    _cron = field_validator("schedule")(classmethod(lambda cls, v: v if v is None else validate_cron(v)))

    @property
    def state(self) -> Path:
        return self.state_dir or self.directory / ".state"

    def dirs(self) -> dict[str, Path]:
        return {**super().dirs(), "state_dir": self.state}

    @property
    def envelope_bytes(self) -> int:
        """The largest envelope's raw bytes: a chunk closes once its rows may take ``CHUNK_BYTES``; the last
        row and the header each take at most 2 x ``max_line_bytes`` in it (a row that would take more is
        rejected as too long). A file that cannot be imported travels whole only up to this size too."""
        return CHUNK_BYTES + 4 * self.max_line_bytes

    def published_limits(self) -> dict[str, int]:
        """The largest envelope (:mod:`engine.limits`): :attr:`envelope_bytes`, set by ``max_line_bytes``."""
        return {"max_line_bytes": self.envelope_bytes}

    def record_source(self, adapter: str) -> str:
        """Record-key prefix: the spec's ``source``, else the source system, else the adapter name."""
        return self.spec.source or self.source_system or adapter

    def mapping_options(self) -> dict[str, Any]:
        """The spec as a JSON-able dict for ``ctx.options``, code tables loaded (once)."""
        if self._options is None:
            opts = self.spec.model_dump(mode="json", exclude_none=True)
            for name, table in self.spec.tables.items():
                codes = load_table(Path(table.path)) if table.path else {}
                codes.update(opts["tables"][name].get("codes", {}))
                opts["tables"][name] = {**opts["tables"][name], "codes": codes}
                opts["tables"][name].pop("path", None)
            if self.delimiter:
                opts["delimiter"] = self.delimiter
            self._options = opts
        return self._options


__all__ = ["CHUNK_BYTES", "REJECTS_SUFFIX", "CsvOptions"]
