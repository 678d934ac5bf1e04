"""Schema migrations: an ordered list of steps, each applied once and recorded.

``migrate(engine)`` is idempotent and safe to run from several processes at once (PostgreSQL: an
advisory lock; SQLite: an immediate transaction). Add a step at the end; never edit an applied one.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from engine.store import schema as s

Step = Callable[[sa.Connection], None]


def _v1_initial(conn: sa.Connection) -> None:
    for table in (
        s.raw_archive,
        s.record_versions,
        s.identifiers,
        s.identity_edges,
        s.identity_conflicts,
        s.dead_letters,
        s.processed_messages,
    ):
        table.create(conn, checkfirst=True)


def _v2_raw_archive_lean(conn: sa.Connection) -> None:
    """Drop raw_archive's indexes on sha256 and (adapter, received_at): no query used them, and every
    envelope paid for both in PostgreSQL's CPU. An archived envelope is found by its id (the primary key),
    which dead letters, record versions and log lines carry."""
    for name in ("ix_raw_archive_sha256", "ix_raw_archive_adapter_received"):
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def _v3_processed_content_hash(conn: sa.Connection) -> None:
    """processed_messages gains ``content_hash`` and is keyed by (dedup_key, content_hash): a control id a
    sender uses again for different content is a different message, not a duplicate. Existing rows take
    the hash of their archived envelope; a row whose envelope is not archived (remembered by a listener,
    not yet committed) gets ``''``, which matches no message, so a message under its key is processed
    again (the journal's idempotent writes absorb a true resend) rather than dropped."""
    if "content_hash" in {c["name"] for c in sa.inspect(conn).get_columns("processed_messages")}:
        return  # made by _v1_initial from the current schema
    if conn.dialect.name == "postgresql":
        _v3_postgresql(conn)
        return
    conn.exec_driver_sql("ALTER TABLE processed_messages RENAME TO processed_messages_v2")
    s.processed_messages.create(conn)
    conn.exec_driver_sql(
        "INSERT INTO processed_messages (dedup_key, envelope_id, ack_code, content_hash) "
        "SELECT p.dedup_key, p.envelope_id, p.ack_code, COALESCE(substr(r.sha256, 1, 32), '') "
        "FROM processed_messages_v2 p LEFT JOIN raw_archive r ON r.envelope_id = p.envelope_id"
    )
    conn.exec_driver_sql("DROP TABLE processed_messages_v2")


def _v3_postgresql(conn: sa.Connection) -> None:
    pkey = sa.inspect(conn).get_pk_constraint("processed_messages")["name"]
    for sql in (
        "ALTER TABLE processed_messages ADD COLUMN content_hash VARCHAR(32) NOT NULL DEFAULT ''",
        (
            "UPDATE processed_messages p SET content_hash = substr(r.sha256, 1, 32) FROM raw_archive r "
            "WHERE r.envelope_id = p.envelope_id"
        ),
        f'ALTER TABLE processed_messages DROP CONSTRAINT "{pkey}"',
        "ALTER TABLE processed_messages ADD PRIMARY KEY (dedup_key, content_hash)",
        "ALTER TABLE processed_messages ALTER COLUMN content_hash DROP DEFAULT",
    ):
        conn.exec_driver_sql(sql)


def _v4_fhir_ids(conn: sa.Connection) -> None:
    """The read side's id table (see :mod:`engine.store.schema`)."""
    s.fhir_ids.create(conn, checkfirst=True)


STEPS: list[tuple[int, str, Step]] = [
    (1, "initial schema", _v1_initial),
    (2, "raw_archive without unused indexes", _v2_raw_archive_lean),
    (3, "processed_messages keyed by dedup_key and content hash", _v3_processed_content_hash),
    (4, "fhir ids of served records and citizens", _v4_fhir_ids),
]
_LOCK_ID = 7_243_001


def migrate(engine: sa.Engine) -> list[int]:
    """Apply every pending step; return the versions applied now."""
    applied_now: list[int] = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
        s.schema_migrations.create(conn, checkfirst=True)
        done = {r[0] for r in conn.execute(sa.select(s.schema_migrations.c.version))}
        for version, name, step in STEPS:
            if version in done:
                continue
            step(conn)
            conn.execute(s.schema_migrations.insert().values(version=version, name=name))
            applied_now.append(version)
    return applied_now


def current_version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("schema_migrations"):
            return 0
        return conn.execute(sa.select(sa.func.max(s.schema_migrations.c.version))).scalar() or 0
