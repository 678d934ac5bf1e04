"""Opening a SQLite file (the journal, the embedded queue) to read it without writing anything beside it."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the existing SQLite file at ``path``. Without a write-ahead log everything is
    in the file: it is then read as immutable, which creates no ``-shm``/``-wal`` files; with one (a process
    writes to it), as read-only, so what the log holds is seen too."""
    path = path.resolve()
    mode = "ro" if path.with_name(path.name + "-wal").exists() else "ro&immutable=1"
    return sqlite3.connect(f"{path.as_uri()}?mode={mode}", uri=True, check_same_thread=False)
