"""What the store does with what the database refuses (issue 18, item 1): an envelope whose metadata does not
fit its columns is dead-lettered on its own and its batch commits; a refusal of the whole store (a revoked
privilege, a missing column) is an outage: nothing is dead-lettered, the batch is requeued."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from engine.errors import StoreUnavailable
from engine.outcome import Outcome
from engine.store import Store
from engine.store import schema as s
from tests.helpers import envelope, fnr_id, observation, outcome


def good(n: int) -> list[Outcome]:
    return [outcome(f"g{i}", [observation(f"lab|g{i}", fnr_id(i), float(i))]) for i in range(n)]


def stored_keys(store: Store) -> set[str]:
    return {r["record_key"] for r in store.all_versions()}


@pytest.mark.parametrize("bad_id", ["x" * 70, "nul\x00id"])
def test_an_envelope_id_that_does_not_fit_is_dead_lettered_and_its_batch_commits(
    any_store: Store, store_url: str, bad_id: str
) -> None:
    g = good(4)
    bad = outcome(bad_id, [observation("lab|bad", fnr_id(9), 9.0)])
    stats = any_store.commit_batch([g[0], g[1], bad, g[2], g[3]])
    assert {f"lab|g{i}" for i in range(4)} <= stored_keys(any_store)
    if not store_url.startswith("postgresql"):  # SQLite stores any length, and NUL
        assert not stats.rejected and "lab|bad" in stored_keys(any_store)
        return
    [rejected] = stats.rejected
    assert rejected.reason_code == "STORE_REJECTED" and len(rejected.envelope.id) <= 64
    assert "\x00" not in rejected.envelope.id
    [dead] = any_store.dead_letters()
    assert dead["envelope_id"] == rejected.envelope.id and dead["reason_code"] == "STORE_REJECTED"
    archived = any_store.archived(rejected.envelope.id)
    assert archived is not None and archived.raw == b"x"  # replayable
    again = any_store.commit_batch([g[0], bad])  # redelivered: the same, nothing twice, no outage
    assert [o.envelope.id for o in again.rejected] == [rejected.envelope.id] and again.dead_letters == 0


def test_a_reception_time_with_a_fractional_utc_offset_is_archived_in_utc(any_store: Store) -> None:
    odd = timezone(timedelta(hours=-3, seconds=7, microseconds=5))
    bad = outcome("odd-offset", [observation("lab|odd", fnr_id(8), 8.0)])
    bad = Outcome(
        bad.envelope.model_copy(update={"received_at": datetime(2026, 5, 6, 7, 8, 9, 1, tzinfo=odd)}), result=bad.result
    )
    stats = any_store.commit_batch([*good(3), bad])
    assert {"lab|g0", "lab|g1", "lab|g2"} <= stored_keys(any_store)
    archived = any_store.archived(bad.envelope.id if not stats.rejected else stats.rejected[0].envelope.id)
    assert archived is not None and archived.received_at == bad.envelope.received_at


def test_a_poison_outcome_with_an_unfit_envelope_is_dead_lettered(any_store: Store, store_url: str) -> None:
    env = envelope("p" * 70, adapter="a" * 300, dedup="HL7|A|B|" + "9" * 500)
    poison = Outcome(env, reason_code="POISON_MESSAGE", reason="POISON_MESSAGE: delivered 5 times without a commit")
    stats = any_store.commit_batch([*good(2), poison])
    assert stats.envelopes == 3 and {"lab|g0", "lab|g1"} <= stored_keys(any_store)
    [dead] = any_store.dead_letters()
    assert dead["reason_code"] == "POISON_MESSAGE"
    if store_url.startswith("postgresql"):
        assert len(dead["envelope_id"]) == 64 and len(dead["adapter"]) == 200


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = Store(pg_url)
    yield store
    store.close()


def refuses_at_once(store: Store, n: int, error: str) -> None:
    """The commit of ``n`` envelopes raises StoreUnavailable without isolating anything (no dead letters)."""
    with capture_logs() as events, pytest.raises(StoreUnavailable, match=error):
        store.commit_batch(good(n))
    assert not [e for e in events if e["event"] in ("store.batch_failed", "store.envelope_rejected")]


def _dead_letter_rows(store: Store) -> int:
    with store.engine.connect() as c:
        return int(c.execute(sa.select(sa.func.count()).select_from(s.dead_letters)).scalar() or 0)


def test_a_missing_column_is_an_outage_not_a_dead_letter_each(pg_store: Store) -> None:
    with pg_store.engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE record_versions RENAME COLUMN content TO content_gone")
    refuses_at_once(pg_store, 40, "UndefinedColumn")  # COPY path
    refuses_at_once(pg_store, 3, "UndefinedColumn")  # INSERT path
    assert _dead_letter_rows(pg_store) == 0


def test_a_revoked_privilege_is_an_outage(pg_store: Store, pg_url: str) -> None:
    schema = pg_url.rsplit("%3D", 1)[1]
    role = f"{schema}_ro"
    with pg_store.engine.begin() as c:
        c.exec_driver_sql(f"CREATE ROLE {role}")
        c.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        c.exec_driver_sql(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {schema} TO {role}")
        c.exec_driver_sql(f"REVOKE INSERT ON record_versions FROM {role}")
    limited = Store(f"{pg_url}%20-crole%3D{role}", create=False)
    try:
        refuses_at_once(limited, 5, "InsufficientPrivilege")
        assert _dead_letter_rows(pg_store) == 0
    finally:
        limited.close()
        with pg_store.engine.begin() as c:
            c.exec_driver_sql(f"DROP OWNED BY {role}")
            c.exec_driver_sql(f"DROP ROLE {role}")


def test_a_read_only_database_is_an_outage(pg_store: Store, pg_url: str) -> None:
    read_only = Store(f"{pg_url}%20-cdefault_transaction_read_only%3Don", create=False)
    try:
        refuses_at_once(read_only, 5, "ReadOnlySqlTransaction")
    finally:
        read_only.close()
    assert _dead_letter_rows(pg_store) == 0
