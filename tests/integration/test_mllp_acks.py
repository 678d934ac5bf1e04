"""What the MLLP listener's ACKs mean, against the real RabbitMQ, PostgreSQL and worker.

* a control id reused for other content (MSH-10 ``ADV-DUP-1``, another given name, a later event time) is
  a message of its own: both versions reach the journal; the same bytes again are a duplicate, answered
  with the original code and not published again (cache, in flight, and the store after a restart);
* ``ack_after: commit``: AA only once the record is in the journal; AE with ERR when the mapping rejects;
  no commit within ``commit_timeout``: no answer, and the resend is answered once the original committed;
* enhanced mode: the accept ACK after the confirm, the application ACK from the mapping's outcome, in
  the order MSH-15/MSH-16 ask for;
* a control id with a NUL is stored (escaped) by the listener on PostgreSQL.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from adapters.mllp.client import Ack, MllpClient
from adapters.mllp.framing import encode
from engine.bus.rabbit import RabbitBus
from engine.journal_view import load_journal
from engine.store import Store
from tests.helpers import fnr
from tests.unit.mllp.helpers import listening, working

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


@pytest.fixture
def bus(rabbit_bus: RabbitBus) -> RabbitBus:
    return rabbit_bus


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    s = Store(pg_url)
    yield s
    s.close()


def adt(
    control_id: str,
    given: str = "Kari",
    when: str = "20240102030405",
    *,
    patient: int = 1,
    with_pid: bool = True,
    acks: str = "",
) -> bytes:
    """An ADT^A08 from ADVLAB/ADVHOSP; ``acks``: MSH-15 and MSH-16, e.g. ``"AL|AL"``."""
    msh = f"MSH|^~\\&|ADVLAB|ADVHOSP|ENJOURNAL|HOSP|{when}||ADT^A08^ADT_A01|{control_id}|P|2.5"
    segments = [msh + (f"|||{acks}" if acks else ""), f"EVN|A08|{when}"]
    if with_pid:
        segments.append(f"PID|1||{fnr(patient)}^^^^FNR||Testesen^{given}||19800101|F")
    return ("\r".join([*segments, "PV1|1|I"]) + "\r").encode("ascii")


def _raw_count(store: Store) -> int:
    return sum(store.counts()["received"].values())


def _given_names(store: Store, patient: int = 1) -> tuple[str, list[str]]:
    view = load_journal(store, fnr(patient))
    assert view is not None
    current = [r for r in view.current if r["kind"] == "person"]
    older = [r for r in view.history if r["kind"] == "person"]
    given = [_content(r)["given_name"] for r in older]
    return _content(current[0])["given_name"], given


def _content(r: dict[str, object]) -> dict[str, str]:
    import orjson

    return orjson.loads(r["content"])  # type: ignore[arg-type, no-any-return]


def test_reused_control_id_with_other_content_is_processed_and_flagged(bus: RabbitBus, store: Store) -> None:
    first = adt("ADV-DUP-1", "Kari", "20240102030405")
    second = adt("ADV-DUP-1", "Ingrid", "20240103030405")
    with (
        capture_logs() as logs,
        working(bus, store),
        listening(bus, store, ack_after="commit") as a,
        MllpClient("127.0.0.1", a.port) as c,
    ):
        assert [x.code for x in c.send_many([first, second])] == ["AA", "AA"]  # one batch: in flight together
        assert c.send(first)[0].code == "AA"  # the same bytes: a duplicate (from the cache)
        assert c.send(second)[0].code == "AA"
        assert c.send(adt("ADV-SYNC", patient=2))[0].code == "AA"  # committed: so is everything before it
    assert _raw_count(store) == 3  # both versions and the sync message; no resend published
    assert _given_names(store) == ("Ingrid", ["Kari"])
    versions = store.processed_versions(["HL7|ADVLAB|ADVHOSP|ADV-DUP-1"])["HL7|ADVLAB|ADVHOSP|ADV-DUP-1"]
    assert len(versions) == 2
    reused = [e for e in logs if e["event"] == "mllp.control_id_reused"]
    assert len(reused) == 1 and reused[0]["flagged"]
    flagged = store.archived(reused[0]["envelope"])
    assert flagged is not None and flagged.raw == second
    assert flagged.attributes["control_id_reused"] == reused[0]["earlier"]


def test_after_a_restart_the_store_tells_contents_apart(bus: RabbitBus, store: Store) -> None:
    first, second, third = (
        adt("ADV-DUP-1", g, f"2024010{d}030405") for g, d in (("Kari", 2), ("Ingrid", 3), ("Sigrid", 4))
    )
    with working(bus, store):
        with listening(bus, store, ack_after="commit") as a, MllpClient("127.0.0.1", a.port) as c:
            assert [x.code for x in c.send_many([first, second])] == ["AA", "AA"]
        with (
            listening(bus, store, ack_after="commit", dedup_lookup_budget_ms=10_000) as a,
            MllpClient("127.0.0.1", a.port) as c,
        ):  # an empty cache: the store's contents decide
            assert [x.code for x in c.send_many([second, third, first])] == ["AA", "AA", "AA"]
            assert c.send(adt("ADV-SYNC", patient=2))[0].code == "AA"
    assert _raw_count(store) == 4
    assert _given_names(store) == ("Sigrid", ["Kari", "Ingrid"])
    flagged = [store.archived(e) for e in _envelopes(store, "HL7|ADVLAB|ADVHOSP|ADV-DUP-1")]
    assert sorted("control_id_reused" in e.attributes for e in flagged if e) == [False, True, True]


def _envelopes(store: Store, key: str) -> list[str]:
    return [e for e, _ in store.processed_versions([key])[key].values()]


def test_ack_after_commit_answers_aa_only_once_the_record_is_in_the_journal(bus: RabbitBus, store: Store) -> None:
    with listening(bus, store, ack_after="commit") as a, MllpClient("127.0.0.1", a.port, timeout=20) as c:
        c.write(encode(adt("ADV-COMMIT-1", "Kari")))
        c.sock.settimeout(1.0)
        with pytest.raises(TimeoutError):  # confirmed by the broker, but no worker has committed it
            c.sock.recv(100)
        assert load_journal(store, fnr(1)) is None
        c.sock.settimeout(20)
        with working(bus, store):
            ack = c.read_ack()
            assert (ack.code, ack.control_id) == ("AA", "ADV-COMMIT-1")
            assert _given_names(store) == ("Kari", [])  # in the journal when the AA arrived


def test_ack_after_commit_holds_the_enhanced_accept_ack_too(bus: RabbitBus, store: Store) -> None:
    """Enhanced mode with ack_after commit: the accept ACK means "in the journal" too (a rejected message is
    archived and dead-lettered: CA, then the application AE if MSH-16 asks for it)."""
    with listening(bus, store, ack_after="commit") as a, MllpClient("127.0.0.1", a.port, timeout=20) as c:
        c.write(encode(adt("ADV-ENHC-1", acks="AL|NE")) + encode(adt("ADV-ENHC-2", with_pid=False, acks="AL|ER")))
        c.sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            c.sock.recv(100)
        c.sock.settimeout(20)
        with working(bus, store):
            assert _codes([c.read_ack() for _ in range(3)]) == [
                ("CA", "ADV-ENHC-1"),
                ("CA", "ADV-ENHC-2"),
                ("AE", "ADV-ENHC-2"),
            ]
            assert _given_names(store) == ("Kari", [])


def test_ack_after_commit_adt_without_pid_gets_ae_with_err(bus: RabbitBus, store: Store) -> None:
    with working(bus, store), listening(bus, store, ack_after="commit") as a, MllpClient("127.0.0.1", a.port) as c:
        bad, good = c.send_many([adt("ADV-NOPID-1", with_pid=False), adt("ADV-OK-1")])
        again = c.send(adt("ADV-NOPID-1", with_pid=False))[0]  # a duplicate of it: the same outcome
    assert (bad.code, bad.control_id, good.code) == ("AE", "ADV-NOPID-1", "AA")
    assert _err(bad) == ("100", "HL7_NO_PID") and again.code == "AE" and _err(again) == ("100", "HL7_NO_PID")
    assert [d["reason_code"] for d in store.dead_letters()] == ["HL7_NO_PID"]


def _err(ack: Ack) -> tuple[str, str]:
    """(HL7 table 0357 code, our reason code) of the ACK's ERR segment."""
    err = next(s for s in ack.raw.decode().split("\r") if s.startswith("ERR"))
    f = err.split("|")
    return f[3].split("^")[0], f[5].split("^")[0]


def test_no_commit_in_time_closes_without_answer_and_the_resend_is_answered(bus: RabbitBus, store: Store) -> None:
    msg = adt("ADV-LATE-1", "Kari")
    with listening(bus, store, ack_after="commit", commit_timeout=1.0) as a:
        with MllpClient("127.0.0.1", a.port, timeout=20) as c:
            c.write(encode(msg))
            assert _closed(c.sock) == b""  # no worker: no commit, no answer
        with working(bus, store), MllpClient("127.0.0.1", a.port, timeout=20) as c:
            assert c.send(msg)[0].code == "AA"  # the resend: a duplicate, answered once the original committed
    assert _raw_count(store) == 1


def _closed(sock: socket.socket) -> bytes:
    try:
        return sock.recv(100)
    except ConnectionResetError:
        return b""


def _codes(acks: list[Ack]) -> list[tuple[str, str]]:
    return [(a.code, a.control_id) for a in acks]


def test_enhanced_mode_application_ack_reflects_the_mapping(bus: RabbitBus, store: Store) -> None:
    no_pid = adt("ADV-ENH-1", with_pid=False, acks="AL|AL")
    good = adt("ADV-ENH-2", acks="AL|AL")
    with working(bus, store), listening(bus, store) as a, MllpClient("127.0.0.1", a.port) as c:
        c.write(encode(no_pid) + encode(good))
        got = [c.read_ack() for _ in range(4)]
        codes = _codes(got)
        assert sorted(codes) == sorted(
            [("CA", "ADV-ENH-1"), ("AE", "ADV-ENH-1"), ("CA", "ADV-ENH-2"), ("AA", "ADV-ENH-2")]
        )
        assert codes.index(("CA", "ADV-ENH-1")) < codes.index(("AE", "ADV-ENH-1")) < codes.index(("AA", "ADV-ENH-2"))
        assert codes.index(("CA", "ADV-ENH-1")) < codes.index(("CA", "ADV-ENH-2")) < codes.index(("AA", "ADV-ENH-2"))
        assert _err(got[codes.index(("AE", "ADV-ENH-1"))]) == ("100", "HL7_NO_PID")
        # MSH-16 ER: an application ACK only on an error; SU: only on success; NE: never
        assert _codes(c.send(adt("ADV-ENH-3", with_pid=False, acks="AL|ER"), acks=2)) == [
            ("CA", "ADV-ENH-3"),
            ("AE", "ADV-ENH-3"),
        ]
        assert _codes(c.send(adt("ADV-ENH-4", acks="AL|SU"), acks=2)) == [("CA", "ADV-ENH-4"), ("AA", "ADV-ENH-4")]
        ordered = [
            adt("ADV-ENH-5", acks="AL|ER"),
            adt("ADV-ENH-6", with_pid=False, acks="AL|SU"),
            adt("ADV-ENH-7", with_pid=False, acks="AL|NE"),
            adt("ADV-ENH-8", acks="AL|AL"),
        ]
        assert sorted(_codes(c.send_many(ordered) + [c.read_ack()])) == sorted(
            [("CA", "ADV-ENH-5"), ("CA", "ADV-ENH-6"), ("CA", "ADV-ENH-7"), ("CA", "ADV-ENH-8"), ("AA", "ADV-ENH-8")]
        )
    dead = sorted(d["reason_code"] for d in store.dead_letters())
    assert dead == ["HL7_NO_PID"] * 4


def test_a_control_id_with_control_characters_is_remembered_escaped(bus: RabbitBus, store: Store) -> None:
    """A NUL (or any control character) in MSH-10 cannot break the listener's key store on PostgreSQL."""
    msg = adt("ADV\x00NUL\x01", "Kari")
    with listening(bus, store) as a, MllpClient("127.0.0.1", a.port) as c:
        assert c.send(msg)[0].code == "AA"
        assert c.send(msg)[0].code == "AA"  # a duplicate: not published again
    key = "HL7|ADVLAB|ADVHOSP|ADV%00NUL%01"
    stored = store.processed_versions([key])
    assert list(stored) == [key] and list(stored[key]) == [_sha(msg)] and stored[key][_sha(msg)][1] == "AA"
    assert bus.depth()["work"] == 1  # one AMQP message: the resend was not published


def _sha(raw: bytes) -> str:
    import hashlib

    return hashlib.sha256(raw).hexdigest()[:32]


class _CountingReaders:
    """The store, counting the event-loop key readers (PostgreSQL connections) a listener opens."""

    def __init__(self, store: Store) -> None:
        self.store, self.made = store, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def async_key_reader(self) -> object:
        self.made += 1
        return self.store.async_key_reader()


def test_duplicates_and_commits_share_one_store_connection(bus: RabbitBus, store: Store) -> None:
    """ack_after commit looks up duplicates and commits: both on the listener's one event-loop reader."""
    keys = _CountingReaders(store)
    with working(bus, store), listening(bus, keys, ack_after="commit") as a, MllpClient("127.0.0.1", a.port) as c:
        first = adt("ADV-ONE-1")
        assert [x.code for x in c.send_many([first, adt("ADV-ONE-2", patient=2)])] == ["AA", "AA"]
        assert c.send(first)[0].code == "AA"  # a duplicate: its answer waits for the original's commit
    assert keys.made == 1
