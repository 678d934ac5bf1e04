"""A read-only look at the store for ``enjournal check``: can it be reached, and is its schema current?

It creates nothing. A SQLite file that does not exist yet is reported as such (``enjournal run`` creates
it); an existing one is opened read-only (:func:`engine.readonly.connect_read_only`). PostgreSQL is asked
inside a transaction that is rolled back. Migrations still to apply are counted, never run
(:func:`engine.store.migrations.migrate` runs them when the engine starts).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from engine.errors import StoreUnavailable
from engine.readonly import connect_read_only
from engine.store.migrations import STEPS, current_version


@dataclass(frozen=True)
class StoreState:
    """What the store is like now."""

    dialect: str
    #: False: a SQLite file not created yet (nothing to connect to)
    exists: bool = True
    #: the newest schema version applied (0: none)
    version: int = 0

    @property
    def pending(self) -> int:
        """Migrations the engine applies when it starts."""
        return sum(1 for v, _name, _step in STEPS if v > self.version)


def probe(url: str) -> StoreState:
    """Connect to the store at ``url`` read-only and read its schema version; StoreUnavailable when it cannot
    be reached or read."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _probe_sqlite(parsed.database)
    return _read(sa.create_engine(url, poolclass=NullPool))


def _probe_sqlite(database: str | None) -> StoreState:
    if not database or database == ":memory:" or not Path(database).exists():
        return StoreState("sqlite", exists=False)
    path = Path(database)
    return _read(sa.create_engine("sqlite://", creator=lambda: connect_read_only(path), poolclass=NullPool))


def _read(engine: sa.Engine) -> StoreState:
    try:
        return StoreState(engine.dialect.name, version=current_version(engine))
    except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
        raise StoreUnavailable(f"cannot reach the store ({type(exc).__name__})") from None
    finally:
        engine.dispose()
