"""Schema migrations on SQLite and PostgreSQL: a database made by an earlier version is brought up to date."""

from __future__ import annotations

import sqlalchemy as sa

from engine.store import schema as s
from engine.store.journal import make_engine
from engine.store.migrations import STEPS, _v1_initial, current_version, migrate


def _indexes(engine: sa.Engine, table: str) -> set[str]:
    with engine.connect() as c:
        return {ix["name"] for ix in sa.inspect(c).get_indexes(table) if ix["name"]}


def test_a_version_1_database_loses_the_raw_archives_unused_indexes(store_url: str) -> None:
    engine = make_engine(store_url, 2)
    try:
        with engine.begin() as c:  # what version 1 made: the tables plus two indexes on raw_archive
            s.schema_migrations.create(c)
            _v1_initial(c)
            c.exec_driver_sql("CREATE INDEX ix_raw_archive_sha256 ON raw_archive (sha256)")
            c.exec_driver_sql("CREATE INDEX ix_raw_archive_adapter_received ON raw_archive (adapter, received_at)")
            c.execute(s.schema_migrations.insert().values(version=1, name="initial schema"))
        assert {"ix_raw_archive_sha256", "ix_raw_archive_adapter_received"} <= _indexes(engine, "raw_archive")
        assert migrate(engine) == [v for v, _, _ in STEPS if v > 1]
        assert not {"ix_raw_archive_sha256", "ix_raw_archive_adapter_received"} & _indexes(engine, "raw_archive")
        assert "ix_record_versions_subject" in _indexes(engine, "record_versions")
        assert migrate(engine) == [] and current_version(engine) == STEPS[-1][0]
    finally:
        engine.dispose()


def test_a_new_database_gets_every_step(store_url: str) -> None:
    engine = make_engine(store_url, 2)
    try:
        assert migrate(engine) == [v for v, _, _ in STEPS]
        assert not _indexes(engine, "raw_archive")
    finally:
        engine.dispose()


def test_a_version_5_database_gets_the_attachments_table(store_url: str) -> None:
    engine = make_engine(store_url, 2)
    try:
        with engine.begin() as c:  # what version 5 made
            s.schema_migrations.create(c)
            for version, name, step in STEPS[:5]:
                step(c)
                c.execute(s.schema_migrations.insert().values(version=version, name=name))
        with engine.connect() as c:
            assert not sa.inspect(c).has_table("attachments")
        assert migrate(engine) == [6]
        with engine.connect() as c:
            cols = [col["name"] for col in sa.inspect(c).get_columns("attachments")]
            assert cols == ["sha256", "content_type", "size", "envelope_id", "subject_key", "data"]
            if engine.dialect.name == "postgresql":
                storage = c.exec_driver_sql(
                    "SELECT attstorage FROM pg_attribute WHERE attrelid = 'attachments'::regclass AND attname = 'data'"
                ).scalar()
                assert storage == "e"  # EXTERNAL: out of line, not compressed
    finally:
        engine.dispose()
