"""The audit log on SQLite and PostgreSQL: append, query, verify; tampering is found; concurrent appends
keep one linear chain; the database refuses updates and deletes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine import ids
from engine.audit import AuditEntry, AuditLog
from engine.audit.schema import GENESIS
from engine.auth.policy import decide
from engine.auth.principal import Principal
from engine.errors import StoreUnavailable
from engine.store.journal import Store
from tests.helpers import fnr

CIT_KEY = f"{ids.OID_FNR}|{fnr(1)}"
CLIN = Principal(
    actor="hpr:9144900",
    role="clinician",
    scopes=frozenset({"user/*.rs"}),
    hpr="9144900",
    purpose="TREAT",
    client="10.1.2.3",
)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url, pool_size=8)
    yield s
    s.close()


def _entry(i: int = 0, **kw: object) -> AuditEntry:
    base: dict[str, object] = {
        "actor": f"hpr:{9000000 + i}",
        "role": "clinician",
        "outcome": "allowed",
        "reason_code": "ALLOWED",
        "purpose": "TREAT",
        "citizen_key": CIT_KEY,
        "resource_type": "Observation",
        "resource_ids": (f"obs-{i}",),
        "query": f"/fhir/Observation?patient=p{i}",
        "client": "127.0.0.1",
    }
    return AuditEntry.model_validate(base | kw)


def test_append_query_and_verify(store: Store) -> None:
    log = AuditLog(store)
    assert log.verify() is None  # an empty log holds
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ids_ = [log.append(_entry(i, at=t0 + timedelta(minutes=i))) for i in range(5)]
    assert ids_ == [1, 2, 3, 4, 5]
    assert log.verify() is None
    rows = log.query(citizen=CIT_KEY)
    assert [r.id for r in rows] == ids_ and rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert rows[2].resource_ids == ("obs-2",) and rows[2].at == t0 + timedelta(minutes=2)
    assert [r.id for r in log.query(actor="hpr:9000003")] == [4]
    assert [
        r.id
        for r in log.query(citizen=[CIT_KEY, "x"], since=t0 + timedelta(minutes=1), until=t0 + timedelta(minutes=3))
    ] == [2, 3]
    assert log.query(citizen="someone-else") == []


def test_an_entry_from_a_decision_and_a_denial(store: Store) -> None:
    log = AuditLog(store)
    d = decide(CLIN, "read", resource_type="AuditEvent", citizen_ids=frozenset({CIT_KEY}))
    rid = log.append(AuditEntry.of(CLIN, d, resource_type="AuditEvent", citizen_key=CIT_KEY, query="/fhir/AuditEvent"))
    rid2 = log.append(AuditEntry.unauthenticated("TOKEN_EXPIRED", client="10.9.9.9", query="/fhir/Patient/x"))
    ops = Principal(actor="ops:alice", role="ops", scopes=frozenset({"system/*.rs"}), break_glass="incident 7")
    glass = decide(ops, "read", resource_type="Observation", citizen_ids=frozenset({CIT_KEY}))
    rid3 = log.append(AuditEntry.of(ops, glass, resource_type="Observation", citizen_key=CIT_KEY, resource_ids=["o1"]))
    rows = {r.id: r for r in log.query()}
    assert (rows[rid].outcome, rows[rid].reason_code, rows[rid].client) == (
        "denied",
        "DENIED_RESOURCE_TYPE",
        "10.1.2.3",
    )
    assert (rows[rid2].actor, rows[rid2].outcome, rows[rid2].reason_code) == ("anonymous", "denied", "TOKEN_EXPIRED")
    assert (rows[rid3].reason_code, rows[rid3].break_glass) == ("ALLOWED_BREAK_GLASS", "incident 7")
    assert log.verify() is None


def _disable_guard(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
    else:
        conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")


def test_the_database_refuses_updates_and_deletes(store: Store) -> None:
    AuditLog(store).append(_entry())
    for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as c:
            c.exec_driver_sql(sql)
    if store.dialect == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as c:
            c.exec_driver_sql("TRUNCATE audit_log")
    assert AuditLog(store).verify() is None


@pytest.mark.parametrize(
    ("sql", "broken", "why"),
    [
        ("UPDATE audit_log SET citizen_key = 'HOSP|1' WHERE id = 4", 4, "hash"),
        ("UPDATE audit_log SET outcome = 'denied' WHERE id = 1", 1, "hash"),
        ("DELETE FROM audit_log WHERE id = 3", 4, "id"),
        ("DELETE FROM audit_log WHERE id = 1", 2, "id"),
        ("UPDATE audit_log SET hash = prev_hash WHERE id = 5", 5, "hash"),
    ],
)
def test_a_tampered_row_is_found_with_its_id(store: Store, sql: str, broken: int, why: str) -> None:
    log = AuditLog(store)
    for i in range(6):
        log.append(_entry(i))
    with store.engine.begin() as c:
        _disable_guard(c)
        c.exec_driver_sql(sql)
    assert log.verify() == broken
    found = log.check()
    assert found is not None and (found.id, found.why) == (broken, why)


def test_a_rewritten_row_with_its_hash_recomputed_breaks_the_next_link(store: Store) -> None:
    from engine.audit.log import row_hash

    log = AuditLog(store)
    for i in range(4):
        log.append(_entry(i))
    with store.engine.begin() as c:
        _disable_guard(c)
        row = dict(c.execute(sa.text("SELECT * FROM audit_log WHERE id = 2")).mappings().one())
        row["actor"] = "hpr:1"
        c.execute(sa.text("UPDATE audit_log SET actor = 'hpr:1', hash = :h WHERE id = 2"), {"h": row_hash(row)})
    broken = log.check()
    assert broken is not None and (broken.id, broken.why) == (3, "link")


def test_concurrent_appends_keep_one_linear_chain(store: Store, store_url: str) -> None:
    other = Store(store_url, pool_size=4)  # a second process's writer: its own engine and group
    logs = [AuditLog(store), AuditLog(other)]
    log = logs[0]
    threads, per_thread = 8, 25
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                logs[t % 2].append(_entry(t * 1000 + i))
        except BaseException as exc:  # noqa: BLE001  # collected and asserted on below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    other.close()
    assert not errors
    rows = log.query(limit=10_000)
    assert [r.id for r in rows] == list(range(1, threads * per_thread + 1))
    assert sorted(r.actor for r in rows) == sorted(f"hpr:{9000000 + t * 1000 + i}" for t in range(8) for i in range(25))
    assert log.verify() is None


def test_append_many_links_in_order(store: Store) -> None:
    log = AuditLog(store)
    log.append(_entry(0))
    assert log.append_many([_entry(1), _entry(2), _entry(3)]) == [2, 3, 4]
    assert [r.actor for r in log.query()] == [f"hpr:{9000000 + i}" for i in range(4)]
    assert log.verify() is None


def test_a_failed_group_fails_every_waiting_caller_and_the_next_one_writes(store: Store) -> None:
    log = AuditLog(store)
    with store.engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE audit_log RENAME TO audit_log_away")
    outcomes: list[object] = []
    start = threading.Barrier(6)

    def work(i: int) -> None:
        start.wait()
        try:
            outcomes.append(log.append(_entry(i)))
        except StoreUnavailable as exc:
            outcomes.append(exc.code)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(timeout=60)
    assert outcomes == ["STORE_UNAVAILABLE"] * 6
    with store.engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE audit_log_away RENAME TO audit_log")
    assert log.append(_entry(9)) == 1 and log.verify() is None


def test_the_paged_walk_crosses_page_boundaries(store: Store) -> None:
    log = AuditLog(store)
    for i in range(7):
        log.append(_entry(i))
    assert log.check(batch=3) is None
    with store.engine.begin() as c:
        _disable_guard(c)
        c.exec_driver_sql("UPDATE audit_log SET query = '/x' WHERE id = 6")
    broken = log.check(batch=3)
    assert broken is not None and broken.id == 6


def test_paging_newest_first_and_the_head(store: Store) -> None:
    log = AuditLog(store)
    assert log.head() == (0, GENESIS)
    for i in range(5):
        log.append(_entry(i))
    assert [r.id for r in log.query(limit=2)] == [1, 2]
    assert [r.id for r in log.query(after=2, limit=2)] == [3, 4]
    assert [r.id for r in log.query(newest_first=True, limit=2)] == [5, 4]
    assert [r.id for r in log.query(newest_first=True, after=4, limit=2)] == [3, 2]
    assert log.head() == (5, log.query(after=4)[0].hash)


def test_citizen_keys_cover_every_identifier_of_a_merged_citizen(store: Store) -> None:
    from engine.audit import citizen_keys
    from engine.model import IdentityLink
    from tests.helpers import fnr_id, local_id, outcome, person

    a = fnr_id(1)
    store.commit_batch([outcome("e1", [person(a, others=(local_id("L9"),))], [IdentityLink(a=a, b=local_id("L9"))])])
    keys = citizen_keys(store, fnr(1))
    assert CIT_KEY in keys and local_id("L9").key in keys
    assert citizen_keys(store, "L9") == keys
    assert citizen_keys(store, "nobody-has-this") == ["nobody-has-this"]
