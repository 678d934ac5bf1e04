"""Import checkpoints: one small JSON file per (adapter, file sha256) in the adapter's state directory.

``<state>/<adapter>.<sha256>.json`` holds where a resumed import starts (``next_row``: data rows
already confirmed on the bus), the counts so far and the length of the reject report at that point.
``<state>/<adapter>.<sha256>.done`` marks a file imported completely: importing the same bytes again
publishes nothing. Every write is atomic (tmp + fsync + rename + directory fsync), so a kill -9 leaves
either the old or the new checkpoint, never a torn one. No patient data is stored, only counts.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict

from adapters.durable import write_file

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class Checkpoint(BaseModel):
    model_config = ConfigDict(extra="ignore")

    next_row: int = 0  # data rows (from 1) up to this one are confirmed
    accepted: int = 0
    rejected: int = 0
    chunks: int = 0
    rejects_bytes: int = 0  # length of the reject report when this checkpoint was written
    file: str = ""


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (readable by the engine's user only)."""
    write_file(path, data, mode=0o600)


class CheckpointStore:
    """Checkpoints of one adapter."""

    def __init__(self, state_dir: Path, adapter: str) -> None:
        self.dir = state_dir
        self.prefix = _SAFE.sub("_", adapter)

    def _path(self, sha256: str, suffix: str) -> Path:
        return self.dir / f"{self.prefix}.{sha256}.{suffix}"

    def load(self, sha256: str) -> Checkpoint:
        p = self._path(sha256, "json")
        try:
            return Checkpoint.model_validate(orjson.loads(p.read_bytes()))
        except FileNotFoundError:
            return Checkpoint()
        except (orjson.JSONDecodeError, ValueError):
            return Checkpoint()  # unreadable: start over; ids are deterministic so nothing duplicates

    def save(self, sha256: str, cp: Checkpoint) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path(sha256, "json"), orjson.dumps(cp.model_dump()))

    def is_done(self, sha256: str) -> bool:
        return self._path(sha256, "done").exists()

    def done_summary(self, sha256: str) -> Checkpoint | None:
        try:
            return Checkpoint.model_validate(orjson.loads(self._path(sha256, "done").read_bytes()))
        except (FileNotFoundError, orjson.JSONDecodeError, ValueError):
            return None

    def mark_done(self, sha256: str, cp: Checkpoint) -> None:
        """Record the file as fully imported, then drop its progress checkpoint."""
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path(sha256, "done"), orjson.dumps(cp.model_dump()))
        self._path(sha256, "json").unlink(missing_ok=True)
