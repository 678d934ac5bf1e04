"""Queries of the read side: FHIR ids, the versions of one record, the component of an identifier.

Every function takes an open connection; none writes except :func:`remember_ids`, which records the FHIR
ids a response hands out (idempotent: insert if absent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.store import schema as s

__all__ = ["component_of", "key_of", "remember_ids", "versions_of"]


def remember_ids(conn: sa.Connection, rows: Sequence[tuple[str, str, str]]) -> None:
    """Record ``(fhir_id, kind, key)`` rows that are not there yet (one statement)."""
    if not rows:
        return
    t = s.fhir_ids
    values = [{"fhir_id": i, "kind": k, "key": key} for i, k, key in dict.fromkeys(rows)]
    insert = postgresql.insert(t) if conn.dialect.name == "postgresql" else sqlite.insert(t)
    conn.execute(insert.on_conflict_do_nothing(index_elements=["fhir_id"]), values)


def key_of(conn: sa.Connection, fhir_id: str) -> tuple[str, str] | None:
    """``(kind, key)`` of a FHIR id that was served, or None."""
    t = s.fhir_ids
    row = conn.execute(sa.select(t.c.kind, t.c.key).where(t.c.fhir_id == fhir_id)).first()
    return (str(row[0]), str(row[1])) if row is not None else None


def versions_of(conn: sa.Connection, record_key: str) -> list[dict[str, Any]]:
    """Every stored version of one record (the primary key's first column: an index look-up)."""
    rv = s.record_versions
    return [dict(r._mapping) for r in conn.execute(sa.select(rv).where(rv.c.record_key == record_key))]


def component_of(conn: sa.Connection, id_key: str) -> str | None:
    """The component label of a linked identifier key, or None when no link names it."""
    t = s.identifiers
    found = conn.execute(sa.select(t.c.component).where(t.c.id_key == id_key).limit(1)).scalar()
    return str(found) if found is not None else None
