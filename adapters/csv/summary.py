"""What one CSV import did (counts only, never row content)."""

from __future__ import annotations

from pydantic import BaseModel


class ImportSummary(BaseModel):
    file: str
    sha256: str
    rows: int
    accepted: int
    rejected: int
    unchanged: bool = False
    chunks: int = 0
    seconds: float = 0.0
    complete: bool = True


__all__ = ["ImportSummary"]
