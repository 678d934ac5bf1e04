"""The journal store's three properties, on SQLite and PostgreSQL: idempotent, order-independent, one citizen."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.model import IdentityLink, RecordStatus
from engine.store import Store
from engine.store import schema as s
from engine.store.journal import current_versions
from tests.helpers import ack_code, fnr_id, local_id, observation, outcome, person

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")


def snapshot(store: Store) -> tuple:
    rows = store.all_versions()
    cur, _hist = current_versions(rows)
    with store.engine.connect() as c:
        comps = sorted(c.execute(sa.select(s.identifiers.c.id_key, s.identifiers.c.component)).all())
        conflicts = sorted(c.execute(sa.select(s.identity_conflicts.c.a_key, s.identity_conflicts.c.b_key)).all())
    versions = sorted((r["record_key"], r["version_hash"]) for r in rows)
    current = sorted((r["record_key"], r["version_hash"], r["status"]) for r in cur)
    return versions, current, [tuple(x) for x in comps], [tuple(x) for x in conflicts]


def wipe(store: Store) -> None:
    with store.engine.begin() as c:
        for t in (
            s.raw_archive,
            s.record_versions,
            s.identifiers,
            s.identity_edges,
            s.identity_conflicts,
            s.dead_letters,
            s.processed_messages,
        ):
            c.execute(t.delete())
    store._edges = type(store._edges)()


def test_same_message_twice_changes_nothing(store_url: str) -> None:
    store = Store(store_url)
    p = fnr_id(0)
    o = outcome("e1", [person(p), observation("lab|1|NPU02593", p, 5.1)], [IdentityLink(a=p, b=local_id("123"))])
    first = store.commit_batch([o])
    before = snapshot(store)
    second = store.commit_batch([o, o])
    assert first.versions_new == 2
    assert second.versions_new == 0 and second.versions_unchanged == 4
    assert snapshot(store) == before
    store.close()


def test_correction_supersedes_and_cancellation_cancels(store_url: str) -> None:
    store = Store(store_url)
    p = fnr_id(1)
    key = "lab|9|NPU01685"
    store.commit_batch([outcome("e3", [observation(key, p, 1.0, minutes=20, status=RecordStatus.CANCELLED)])])
    store.commit_batch([outcome("e1", [observation(key, p, 2.0, minutes=0)])])
    store.commit_batch([outcome("e2", [observation(key, p, 3.0, minutes=10, status=RecordStatus.CORRECTED)])])
    cur, hist = current_versions(store.all_versions())
    assert [r["status"] for r in cur] == ["cancelled"]
    assert len(hist) == 2
    store.close()


messages = st.lists(
    st.tuples(
        st.integers(0, 3),  # patient
        st.integers(0, 4),  # record key
        st.integers(0, 3),  # minutes
        st.floats(0, 10, allow_nan=False).map(lambda f: round(f, 1)),
        st.sampled_from([RecordStatus.FINAL, RecordStatus.CORRECTED, RecordStatus.CANCELLED]),
        st.booleans(),  # carries a link local id <-> FNR
    ),
    min_size=1,
    max_size=12,
)


def _build(msgs: list) -> list:
    outs = []
    for i, (pat, key, minutes, val, status, link) in enumerate(msgs):
        subject = fnr_id(pat)
        links = [IdentityLink(a=local_id(f"L{pat % 2}"), b=subject)] if link else []
        outs.append(outcome(f"m{i}", [observation(f"lab|{key}", subject, val, minutes, status, env_id=f"m{i}")], links))
    return outs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msgs=messages, seed=st.integers(0, 10_000), batch=st.integers(1, 5))
def test_any_order_and_repetition_gives_the_same_journal(store_url: str, msgs: list, seed: int, batch: int) -> None:
    store = Store(store_url)
    try:
        wipe(store)
        outs = _build(msgs)
        for i in range(0, len(outs), batch):
            store.commit_batch(outs[i : i + batch])
        expected = snapshot(store)
        wipe(store)
        shuffled = outs + random.Random(seed).sample(outs, k=min(len(outs), 3))
        random.Random(seed).shuffle(shuffled)
        for i in range(0, len(shuffled), batch + 1):
            store.commit_batch(shuffled[i : i + batch + 1])
        assert snapshot(store) == expected
    finally:
        store.close()


def test_identifiers_resolve_to_one_citizen(store_url: str) -> None:
    store = Store(store_url)
    fnr, dnr_local, hosp = fnr_id(2), local_id("D-77", "OTHERHOSP"), local_id("H1")
    merged = local_id("H2")
    store.commit_batch([outcome("a", [person(hosp)], [IdentityLink(a=hosp, b=fnr)])])
    store.commit_batch(
        [outcome("b", [observation("x|1", merged, 1.0)], [IdentityLink(a=merged, b=hosp, reason="merge")])]
    )
    store.commit_batch([outcome("c", [observation("x|2", dnr_local, 2.0)], [IdentityLink(a=dnr_local, b=fnr)])])
    citizen = store.citizen(fnr.value)
    assert citizen is not None
    assert {i.key for i in citizen.identifiers} == {fnr.key, hosp.key, merged.key, dnr_local.key}
    assert citizen.best == fnr
    assert citizen.conflicts == ()
    assert store.citizen(merged.value).component == citizen.component
    store.close()


def test_two_fnrs_for_one_local_id_is_a_conflict(store_url: str) -> None:
    store = Store(store_url)
    a, b, loc = fnr_id(3), fnr_id(4), local_id("X9")
    store.commit_batch([outcome("a", [], [IdentityLink(a=loc, b=a)])])
    store.commit_batch([outcome("b", [], [IdentityLink(a=loc, b=b)])])
    citizen = store.citizen(loc.value)
    assert citizen is not None and len(citizen.conflicts) == 1
    assert set(citizen.conflicts[0]) == {a.key, b.key}
    store.close()


def test_dead_letters_and_processed_keys(store_url: str) -> None:
    from engine.outcome import Outcome
    from tests.helpers import envelope

    store = Store(store_url)
    env = envelope("d1", raw=b"MSH|bad", dedup="HL7|APP|FAC|1")
    store.commit_batch([Outcome(env, reason_code="HL7_BAD_MSH", reason="HL7_BAD_MSH: no field separator")])
    store.commit_batch([Outcome(env, reason_code="HL7_BAD_MSH", reason="HL7_BAD_MSH: no field separator")])
    rows = store.dead_letters()
    assert [(r["envelope_id"], r["reason_code"]) for r in rows] == [("d1", "HL7_BAD_MSH")]
    assert store.archived("d1").raw == b"MSH|bad"
    assert ack_code(store, "HL7|APP|FAC|1") == "AR"
    store.close()


def test_a_cancelled_report_cancels_its_items(store_url: str) -> None:
    store = Store(store_url)
    p = fnr_id(7)
    items = [observation(f"lab|R1:item:{i}", p, float(i), minutes=0) for i in range(3)]
    store.commit_batch([outcome("e1", [observation("lab|R1", p, 0.0, minutes=0), *items])])
    store.commit_batch([outcome("e2", [observation("lab|R1", p, 0.0, minutes=5, status=RecordStatus.CANCELLED)])])
    store.commit_batch([outcome("e3", [observation("lab|R10:item:1", p, 1.0, minutes=0)])])  # not a part of R1
    cur, _ = current_versions(store.all_versions())
    status = {r["record_key"]: r["status"] for r in cur}
    assert status == {
        "lab|R1": "cancelled",
        "lab|R1:item:0": "cancelled",
        "lab|R1:item:1": "cancelled",
        "lab|R1:item:2": "cancelled",
        "lab|R10:item:1": "final",
    }
    store.close()


def test_large_batches_are_idempotent_too(store_url: str) -> None:
    """Large batches take PostgreSQL's COPY path: the same counts and the same journal."""
    store = Store(store_url)
    p = fnr_id(8)
    outs = [outcome(f"b{i}", [observation(f"lab|big|{i}", p, float(i)), person(p, env_id=f"b{i}")]) for i in range(150)]
    first = store.commit_batch(outs)
    before = snapshot(store)
    again = store.commit_batch(outs + outs[:10])
    assert (first.versions_new, first.versions_unchanged) == (151, 149)
    assert (again.versions_new, again.versions_unchanged) == (0, 320)
    assert snapshot(store) == before
    assert len(store.all_versions()) == 151
    store.close()


def test_a_lost_insert_race_redoes_the_batch_safely(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key committed by another writer between the look-up and the COPY: the batch is redone in the
    safe mode (staging table + ON CONFLICT), with the same counts and the same journal."""
    from engine.store import bulk

    store = Store(pg_url)
    p = fnr_id(9)
    outs = [outcome(f"r{i}", [observation(f"lab|race|{i}", p, float(i))]) for i in range(100)]
    store.commit_batch(outs[:60])
    before = snapshot(store)
    calls: list[str] = []

    def blind(conn: sa.Connection, table: sa.Table, *_args: object, **_kw: object) -> list:
        calls.append(table.name)
        return []  # as if another writer had committed every key after the look-up

    monkeypatch.setattr(bulk, "select_in", blind)
    stats = store.commit_batch(outs)
    assert calls, "the optimistic path was not taken"
    assert (stats.versions_new, stats.versions_unchanged) == (40, 60)
    assert set(before[0]) < set(snapshot(store)[0]) and len(store.all_versions()) == 100
    store.close()


def test_a_table_skips_its_lookup_after_clean_batches_and_resumes_on_a_stored_key(pg_url: str) -> None:
    """LookupPolicy: after 4 look-ups that found nothing, record_versions is COPYed blind; a batch that
    repeats stored versions then fails its COPY, is redone safely with the right counts, and the table
    looks up again (for 8 clean batches before the next blind one)."""
    store = Store(pg_url)
    policy = store._bulk.policy
    p = fnr_id(10)
    batches = [
        [outcome(f"c{b}-{i}", [observation(f"lab|blind|{b}|{i}", p, float(i))]) for i in range(40)] for b in range(6)
    ]
    for b in batches[:4]:
        assert store.commit_batch(b).versions_new == 40
    assert policy.blind("record_versions") and policy.blind("raw_archive")
    assert store.commit_batch(batches[4]).versions_new == 40  # blind
    # new envelopes (a resent report): 20 of their versions are stored already
    repeat = [outcome(f"x{i}", [observation(f"lab|blind|4|{i}", p, float(i))]) for i in range(20)] + [
        outcome(f"r{i}", [observation(f"lab|blind|r|{i}", p, 1.0)]) for i in range(20)
    ]
    stats = store.commit_batch(repeat)
    assert (stats.versions_new, stats.versions_unchanged) == (20, 20)
    assert not policy.blind("record_versions") and policy.blind("raw_archive")
    for _ in range(4):
        policy.looked_up("record_versions", 0)
    assert not policy.blind("record_versions"), "the clean streak needed doubles after a collision"
    assert len(store.all_versions()) == 5 * 40 + 20
    store.close()


def test_key_lookups_in_chunks_and_pairs(store_url: str) -> None:
    """select_in on a composite key, more keys than one SQLite statement may bind."""
    from engine.store.bulk import Bulk, select_in

    store = Store(store_url)
    edges = [(f"a|{i:05d}", f"b|{i:05d}", "link", "e") for i in range(0, 1200, 2)]
    with store.engine.begin() as c:
        assert Bulk(store.dialect)(c, s.identity_edges, edges) == 600
        assert Bulk(store.dialect, optimistic=False)(c, s.identity_edges, edges) == 0
        wanted = [(f"a|{i:05d}", f"b|{i:05d}") for i in range(1200)] + [("a|00002", "b|00004")]
        found = select_in(c, s.identity_edges, ("a_key", "b_key"), ("a_key", "b_key"), wanted)
    assert sorted(found) == sorted((a, b) for a, b, _r, _e in edges)
    store.close()


def test_large_identity_batches_merge_new_and_stored_identifiers(store_url: str) -> None:
    """Batches of links above the COPY threshold: new identifiers are stored with their final label,
    stored ones relabelled, two FNRs in one component recorded as a conflict."""
    store = Store(store_url)
    n = 40
    first = [outcome(f"a{i}", [], [IdentityLink(a=local_id(f"A{i}"), b=fnr_id(i))]) for i in range(n)]
    second = [
        outcome(
            f"b{i}",
            [],
            [IdentityLink(a=local_id(f"B{i}"), b=fnr_id(i)), IdentityLink(a=local_id(f"B{i}"), b=local_id(f"C{i}"))],
        )
        for i in range(n)
    ]
    clash = [outcome("c", [], [IdentityLink(a=local_id("A0"), b=fnr_id(1))])]
    assert store.commit_batch(first).new_edges == n
    assert store.commit_batch(second).new_edges == 2 * n
    store.commit_batch(clash)
    for i in range(2, n):
        citizen = store.citizen(fnr_id(i).value)
        assert citizen is not None and citizen.conflicts == ()
        assert set(citizen.keys) == {fnr_id(i).key, *(local_id(f"{p}{i}").key for p in "ABC")}
    merged = store.citizen(local_id("C1").value)
    assert merged is not None and len(merged.identifiers) == 8
    assert [set(c) for c in merged.conflicts] == [{fnr_id(0).key, fnr_id(1).key}]
    store.close()


def test_processed_versions_of_many_keys(store_url: str) -> None:
    store = Store(store_url)
    store.remember([(f"HL7|APP|FAC|{i}", f"e{i}", "AA" if i % 3 else "AE", f"{i:032x}") for i in range(0, 1200, 2)])
    asked = [f"HL7|APP|FAC|{i}" for i in range(1200)] + ['HL7|APP|"Q\\|1']  # odd keys: never stored
    found = store.processed_versions(asked)
    assert found == {f"HL7|APP|FAC|{i}": {f"{i:032x}": (f"e{i}", "AA" if i % 3 else "AE")} for i in range(0, 1200, 2)}
    assert store.processed_versions([]) == {} and ack_code(store, "HL7|APP|FAC|1") is None
    store.close()


def test_processed_key_lookup_survives_a_lost_connection(pg_url: str) -> None:
    store = Store(pg_url)
    store.remember([("HL7|APP|FAC|7", "e7", "AA", "7" * 32)])
    assert ack_code(store, "HL7|APP|FAC|7") == "AA"
    with store.engine.connect() as c:  # end the look-up's session (its last query is the look-up)
        ended = c.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND datname = current_database() AND position('FROM processed_messages' in query) > 0 "
            "AND position('unnest' in query) > 0"
        ).scalar()
    assert ended and ended >= 1
    for _ in range(3):  # a connection that failed is dropped, not handed out again
        try:
            assert ack_code(store, "HL7|APP|FAC|7") == "AA"
            break
        except Exception:  # noqa: BLE001 - the terminated connection fails once
            continue
    else:
        raise AssertionError("the look-up did not recover")
    assert ack_code(store, "HL7|APP|FAC|7") == "AA"
    store.close()
