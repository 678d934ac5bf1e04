"""The audit log's table: one row per read (or refused read) of clinical content, hash-chained.

``hash`` is the sha256 of the row's canonical JSON (every column but ``hash``, keys sorted) followed by
``prev_hash``, the hash of the row before (:data:`GENESIS` for the first). ``id`` is given by the writer
(the last id + 1, under a lock), so ids have no gaps and the chain is the id order.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
GENESIS = "0" * 64

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),  # ISO 8601 UTC, microseconds: sorts as text
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("purpose", sa.String(100)),
    sa.Column("citizen_key", sa.String(300)),
    sa.Column("resource_type", sa.String(100)),
    sa.Column("resource_ids", sa.Text, nullable=False),  # a JSON list
    sa.Column("query", sa.Text),
    sa.Column("outcome", sa.String(10), nullable=False),  # allowed | denied
    sa.Column("reason_code", sa.String(60), nullable=False),
    sa.Column("client", sa.String(100)),
    sa.Column("break_glass", sa.Text),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_citizen", "citizen_key", "at"),
    sa.Index("ix_audit_log_actor", "actor", "at"),
    sa.Index("ix_audit_log_at", "at"),
)

#: refuse UPDATE, DELETE and TRUNCATE of the audit log in the database itself (the code never does either)
PG_GUARD = (
    """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
)
SQLITE_GUARD = (
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
)


def create(conn: sa.Connection) -> None:
    """Make the table, its indexes and the append-only guard (the migration's step)."""
    audit_log.create(conn, checkfirst=True)
    for sql in PG_GUARD if conn.dialect.name == "postgresql" else SQLITE_GUARD:
        conn.exec_driver_sql(sql)
