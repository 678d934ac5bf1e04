"""Processed keys by content and commit outcomes, on SQLite and PostgreSQL (migration 3 included).

A sender's key with two contents keeps both (a reused control id is a different message); the look-ups
an MLLP listener makes (processed contents, commit outcomes) answer the same on a thread and on the
event loop; a key built from an MSH with a NUL or other control characters can be stored.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import sqlalchemy as sa

from adapters.hl7_intake.ack import FALLBACK
from engine.outcome import Outcome
from engine.store import Store
from engine.store import schema as s
from engine.store.journal import make_engine
from engine.store.keys_async import content_hash
from engine.store.migrations import STEPS, _v2_raw_archive_lean, current_version, migrate
from mappings.hl7v2.parser import MAX_KEY_CHARS
from tests.helpers import envelope, fnr_id, outcome, person


def _hash(raw: bytes) -> str:
    return envelope("x", raw=raw).sha256[:32]


def test_one_key_two_contents_are_both_kept(any_store: Store) -> None:
    first = envelope("e1", raw=b"MSH|first", dedup="HL7|APP|FAC|1")
    second = envelope("e2", raw=b"MSH|second", dedup="HL7|APP|FAC|1")
    any_store.commit_batch([Outcome(first, reason_code="HL7_NO_PID", reason="HL7_NO_PID")])
    any_store.commit_batch([Outcome(second, reason_code="HL7_NO_PID", reason="HL7_NO_PID")])
    any_store.commit_batch([Outcome(second, reason_code="HL7_NO_PID", reason="HL7_NO_PID")])  # redelivered
    found = any_store.processed_versions(["HL7|APP|FAC|1", "HL7|APP|FAC|2"])
    assert found == {"HL7|APP|FAC|1": {content_hash(first): ("e1", "AR"), content_hash(second): ("e2", "AR")}}


def test_remember_keeps_each_content_of_a_key(any_store: Store) -> None:
    any_store.remember(
        [("HL7|A|B|1", "e1", "AA", "h" * 32), ("HL7|A|B|1", "e2", "AA", "g" * 32), ("HL7|A|B|2", "e3", "AE", "")]
    )  # '': content unknown (a row from before migration 3)
    any_store.remember([("HL7|A|B|1", "e9", "AR", "h" * 32)])  # the same content again: the first row stays
    assert any_store.processed_versions(["HL7|A|B|1", "HL7|A|B|2"]) == {
        "HL7|A|B|1": {"h" * 32: ("e1", "AA"), "g" * 32: ("e2", "AA")},
        "HL7|A|B|2": {"": ("e3", "AE")},
    }


def test_commit_outcomes(any_store: Store) -> None:
    any_store.commit_batch(
        [
            outcome("ok-1", [person(fnr_id(1))]),
            Outcome(envelope("dead-1"), reason_code="HL7_NO_PID", reason="HL7_NO_PID"),
        ]
    )
    ids = ["ok-1", "dead-1", "never"] + [f"x{i}" for i in range(1500)]  # more than one SQLite chunk
    assert any_store.commit_outcomes(ids) == {"ok-1": None, "dead-1": "HL7_NO_PID"}
    assert any_store.commit_outcomes([]) == {}


@pytest.mark.postgres
def test_event_loop_look_ups_answer_as_the_thread_ones(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        store.commit_batch(
            [
                Outcome(envelope("dead-1", dedup="HL7|A|B|1"), reason_code="HL7_NO_PID", reason="HL7_NO_PID"),
                outcome("ok-1", [person(fnr_id(2))]),
            ]
        )
        store.remember([("HL7|A|B|1", "e2", "AA", "f" * 32)])
        reader = store.async_key_reader()
        assert reader is not None

        async def go() -> tuple[object, object, object]:
            try:
                return (
                    await reader.processed_versions(["HL7|A|B|1", "HL7|A|B|9"]),
                    await reader.commit_outcomes(["ok-1", "dead-1", "never"]),
                    await reader.commit_outcomes([]),
                )
            finally:
                await reader.close()

        versions, outcomes, empty = asyncio.run(go())
        assert versions == store.processed_versions(["HL7|A|B|1", "HL7|A|B|9"])
        assert versions == {"HL7|A|B|1": {_hash(b"x"): ("dead-1", "AR"), "f" * 32: ("e2", "AA")}}
        assert outcomes == store.commit_outcomes(["ok-1", "dead-1", "never"]) == {"ok-1": None, "dead-1": "HL7_NO_PID"}
        assert empty == {}
    finally:
        store.close()


@pytest.mark.parametrize(
    "app, facility, control_id",
    [
        ("LAB\x00X", "FAC", "ADV-DUP-1"),
        ("LAB", "F|AC%", "\x01\x1f\x7f\x85"),
        ("LAB", "FAC", "ID\x00" * 200),
    ],
)
def test_keys_of_headers_with_control_characters_can_be_stored(
    any_store: Store, app: str, facility: str, control_id: str
) -> None:
    head = dataclasses.replace(FALLBACK, sending_app=app, sending_facility=facility, control_id=control_id)
    key = head.dedup_key()
    assert key.isprintable() and len(key) <= MAX_KEY_CHARS and "\x00" not in key
    env = envelope("k1", raw=b"MSH|...", dedup=key)
    any_store.commit_batch([Outcome(env, reason_code="HL7_NO_PID", reason="HL7_NO_PID")])
    assert any_store.processed_versions([key]) == {key: {content_hash(env): ("k1", "AR")}}
    other = dataclasses.replace(head, sending_app=app + "\x00")  # a different header: a different key
    assert other.dedup_key() != key


def _v2_database(url: str) -> sa.Engine:
    """A database as version 2 made it: processed_messages keyed by dedup_key alone."""
    engine = make_engine(url, 2)
    with engine.begin() as c:
        s.schema_migrations.create(c)
        for table in (
            s.raw_archive,
            s.record_versions,
            s.identifiers,
            s.identity_edges,
            s.identity_conflicts,
            s.dead_letters,
        ):
            table.create(c)
        c.exec_driver_sql(
            "CREATE TABLE processed_messages (dedup_key VARCHAR(400) NOT NULL PRIMARY KEY, "
            "envelope_id VARCHAR(64) NOT NULL, ack_code VARCHAR(4) NOT NULL)"
        )
        _v2_raw_archive_lean(c)
        c.execute(
            s.schema_migrations.insert(),
            [{"version": 1, "name": "initial schema"}, {"version": 2, "name": "raw_archive lean"}],
        )
    return engine


def test_migration_3_hashes_existing_keys(store_url: str) -> None:
    engine = _v2_database(store_url)
    try:
        archived = envelope("e1", raw=b"MSH|archived", dedup="HL7|A|B|1")
        with engine.begin() as c:
            c.execute(
                s.raw_archive.insert().values(
                    envelope_id="e1",
                    adapter="t",
                    mapping="t",
                    content_type="text/plain",
                    received_at="2024",
                    sha256=archived.sha256,
                    raw=archived.raw,
                )
            )
            c.exec_driver_sql(
                "INSERT INTO processed_messages VALUES ('HL7|A|B|1', 'e1', 'AA'), ('HL7|A|B|2', 'e2', 'AE')"
            )  # e2: remembered by a listener, not yet committed
        assert migrate(engine) == [v for v, _, _ in STEPS if v > 2]
        assert migrate(engine) == [] and current_version(engine) == STEPS[-1][0]
    finally:
        engine.dispose()
    store = Store(store_url)
    try:
        assert store.processed_versions(["HL7|A|B|1", "HL7|A|B|2"]) == {
            "HL7|A|B|1": {archived.sha256[:32]: ("e1", "AA")},
            "HL7|A|B|2": {"": ("e2", "AE")},
        }
        store.remember([("HL7|A|B|1", "e3", "AA", "c" * 32)])  # the new key: another content of a key is kept
        assert len(store.processed_versions(["HL7|A|B|1"])["HL7|A|B|1"]) == 2
    finally:
        store.close()


def test_processed_contents_answers_each_pair_with_at_most_one_other(store_url: str) -> None:
    """Per (key, content hash): the stored row of that content and one envelope of another content, however
    many contents the key holds; keys not stored answer nothing."""
    store = Store(store_url)
    try:
        store.remember(
            [("HL7|A|B|1", f"env-{i}", "AA", f"h{i}") for i in range(50)] + [("HL7|A|B|2", "env-x", "AR", "hx")]
        )
        asked = [("HL7|A|B|1", "h7"), ("HL7|A|B|1", "new"), ("HL7|A|B|2", "hx"), ("HL7|A|B|3", "h0")]
        found = store.processed_contents(asked)
        assert found[0][0] == ("env-7", "AA") and found[0][1] is not None and found[0][1] != "env-7"
        assert found[1][0] is None and found[1][1] is not None
        assert found[2] == (("env-x", "AR"), None)
        assert found[3] == (None, None)
        many = [(f"HL7|A|B|{i}", "h0") for i in range(1000)]  # more pairs than one SQLite statement holds
        assert len(store.processed_contents(many)) == 1000
    finally:
        store.close()


@pytest.mark.postgres
def test_processed_contents_on_the_event_loop_matches_the_thread_look_up(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        store.remember([("HL7|A|B|1", f"env-{i}", "AA", f"h{i}") for i in range(50)])
        asked = [("HL7|A|B|1", "h7"), ("HL7|A|B|1", "new"), ("HL7|A|B|9", "h0")]
        reader = store.async_key_reader()
        assert reader is not None

        async def ask() -> list[tuple[tuple[str, str] | None, str | None]]:
            try:
                return await reader.processed_contents(asked)
            finally:
                await reader.close()

        assert asyncio.run(ask()) == store.processed_contents(asked)
    finally:
        store.close()
