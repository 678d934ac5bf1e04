"""The MLLP listener over real sockets with the embedded (SQLite) bus and a SQLite store.

Pipelining, resync after garbage, AR in the middle of a stream, oversize frames, duplicates,
enhanced mode, idle timeout, a client vanishing mid-frame, no ACK without a confirm, graceful stop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from adapters.mllp.client import MllpClient, synthetic_adt
from adapters.mllp.framing import encode
from engine.bus.embedded import EmbeddedBus
from engine.store import Store
from tests.helpers import ack_code
from tests.unit.mllp.helpers import drain, listening, working


def test_pipelined_messages_answered_in_order(bus: EmbeddedBus, store: Store) -> None:
    msgs = [synthetic_adt(i) for i in range(300)]
    with listening(bus, store) as a, MllpClient("127.0.0.1", a.port) as c:
        acks = c.send_many(msgs)
    assert [x.code for x in acks] == ["AA"] * 300
    assert [x.control_id for x in acks] == [f"MSG{i:08d}" for i in range(300)]
    assert sorted(e.dedup_key or "" for e in drain(bus)) == sorted(f"HL7|LOADGEN|TEST|MSG{i:08d}" for i in range(300))


def test_garbage_and_malformed_frame_in_the_middle(bus: EmbeddedBus, store: Store) -> None:
    with listening(bus, store) as a, MllpClient("127.0.0.1", a.port) as c:
        c.write(
            b"\r\nnoise" + encode(synthetic_adt(1)) + b"junk" + encode(b"not hl7 at all") + encode(synthetic_adt(2))
        )
        acks = [c.read_ack() for _ in range(3)]
        assert [x.code for x in acks] == ["AA", "AR", "AA"]
        assert b"ERR|" in acks[1].raw and b"HL7_NO_MSH" in acks[1].raw
        assert c.send(synthetic_adt(3))[0].code == "AA"  # the connection goes on
    envs = drain(bus)
    assert len(envs) == 4
    rejected = [e for e in envs if e.rejection is not None]
    assert len(rejected) == 1 and rejected[0].raw == b"not hl7 at all"


def test_oversize_frame_gets_ar_and_stream_resyncs(bus: EmbeddedBus, store: Store) -> None:
    big = synthetic_adt(7) + b"NTE|1||" + b"x" * 5000 + b"\r"
    with listening(bus, store, max_message_bytes=2000) as a, MllpClient("127.0.0.1", a.port) as c:
        acks = c.send_many([big, synthetic_adt(8)])
    assert acks[0].code == "AR" and acks[0].control_id == "MSG00000007" and b"MLLP_FRAME_TOO_LARGE" in acks[0].raw
    assert acks[1].code == "AA"
    assert [e.dedup_key for e in drain(bus)] == ["HL7|LOADGEN|TEST|MSG00000008"]


def test_duplicates_answered_with_original_code_and_not_republished(bus: EmbeddedBus, store: Store) -> None:
    m = synthetic_adt(11)
    with listening(bus, store) as a, MllpClient("127.0.0.1", a.port) as c:
        first = c.send(m)[0]
        again = c.send(m)[0]
        burst = c.send_many([synthetic_adt(12)] * 5)  # in flight together
    assert first.code == again.code == "AA" and again.control_id == "MSG00000011"
    assert [x.code for x in burst] == ["AA"] * 5
    assert sorted(e.dedup_key or "" for e in drain(bus)) == [
        "HL7|LOADGEN|TEST|MSG00000011",
        "HL7|LOADGEN|TEST|MSG00000012",
    ]
    assert ack_code(store, "HL7|LOADGEN|TEST|MSG00000011") == "AA"


def test_duplicate_after_restart_found_in_store(bus: EmbeddedBus, store: Store) -> None:
    with listening(bus, store) as a, MllpClient("127.0.0.1", a.port) as c:
        assert c.send(synthetic_adt(21))[0].code == "AA"
    assert len(drain(bus)) == 1
    with listening(bus, store, dedup_lookup_budget_ms=10_000) as a, MllpClient("127.0.0.1", a.port) as c:
        assert c.send(synthetic_adt(21))[0].code == "AA"  # fresh in-memory cache: the store knew it
    assert drain(bus) == []


class SlowKeys:
    """A store whose duplicate look-up is slower than the listener's budget."""

    def __init__(self, store: Store, delay: float) -> None:
        self.store, self.delay = store, delay

    def processed_contents(self, pairs: list[tuple[str, str]]) -> list[tuple[tuple[str, str] | None, str | None]]:
        time.sleep(self.delay)
        return self.store.processed_contents(pairs)

    def remember(self, items: list[tuple[str, str, str, str]]) -> None:
        self.store.remember(items)


def test_slow_duplicate_lookup_does_not_hold_the_ack(bus: EmbeddedBus, store: Store) -> None:
    store.remember([("HL7|LOADGEN|TEST|MSG00000022", "env-22", "AA", "")])  # content unknown: matches no message
    with listening(bus, SlowKeys(store, 0.3), dedup_lookup_budget_ms=1) as a, MllpClient("127.0.0.1", a.port) as c:
        assert [x.code for x in c.send_many([synthetic_adt(22), synthetic_adt(23)])] == ["AA", "AA"]
    # published before the look-up answered: the workers' idempotent store absorbs the resend
    assert sorted(e.dedup_key or "" for e in drain(bus)) == [
        "HL7|LOADGEN|TEST|MSG00000022",
        "HL7|LOADGEN|TEST|MSG00000023",
    ]
    assert ack_code(store, "HL7|LOADGEN|TEST|MSG00000023") == "AA"


def test_enhanced_mode_commit_and_application_acks(bus: EmbeddedBus, store: Store) -> None:
    """The application ACK of an accepted message waits for the worker's commit (a worker runs here)."""
    both = synthetic_adt(31).replace(b"|P|2.5\r", b"|P|2.5|||AL|AL\r")
    commit_only = synthetic_adt(32).replace(b"|P|2.5\r", b"|P|2.5|||AL|NE\r")
    with working(bus, store), listening(bus, store) as a, MllpClient("127.0.0.1", a.port) as c:
        assert [x.code for x in c.send(both, acks=2)] == ["CA", "AA"]
        assert [x.code for x in c.send(commit_only)] == ["CA"]
        bad = synthetic_adt(33, message_type="QRY").replace(b"|P|2.5\r", b"|P|2.5|||AL|ER\r")
        assert [x.code for x in c.send(bad, acks=2)] == ["CR", "AR"]


def test_idle_connection_is_closed(bus: EmbeddedBus, store: Store) -> None:
    with listening(bus, store, idle_timeout=0.3) as a, MllpClient("127.0.0.1", a.port) as c:
        assert c.send(synthetic_adt(41))[0].code == "AA"
        c.sock.settimeout(5)
        assert c.sock.recv(10) == b""


def test_client_vanishing_mid_frame_does_not_hurt(bus: EmbeddedBus, store: Store) -> None:
    with listening(bus, store) as a:
        with MllpClient("127.0.0.1", a.port) as c:
            assert c.send(synthetic_adt(51))[0].code == "AA"
            c.write(b"\x0bMSH|^~\\&|LOADGEN|TEST|half a mess")
        with socket.create_connection(("127.0.0.1", a.port)) as s:
            s.sendall(encode(synthetic_adt(52)) * 20)  # then reset without reading
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        with MllpClient("127.0.0.1", a.port) as c:
            assert c.send(synthetic_adt(53))[0].code == "AA"
    keys = {e.dedup_key for e in drain(bus)}
    assert "HL7|LOADGEN|TEST|MSG00000051" in keys and "HL7|LOADGEN|TEST|MSG00000053" in keys


def test_no_ack_when_the_bus_is_unavailable(tmp_path: Path, store: Store) -> None:
    broken = EmbeddedBus(tmp_path / "q.db")
    broken.close()  # every publish now fails with BusUnavailable
    with listening(broken, store, bus_retry_seconds=0.2) as a, MllpClient("127.0.0.1", a.port) as c:
        c.write(encode(synthetic_adt(61)) + encode(b"garbage message"))
        c.sock.settimeout(10)
        assert c.sock.recv(100) == b""  # closed, and not a single byte of ACK
    assert ack_code(store, "HL7|LOADGEN|TEST|MSG00000061") is None


def test_graceful_stop_answers_frames_already_read(bus: EmbeddedBus, store: Store) -> None:
    msgs = [synthetic_adt(100 + i) for i in range(200)]
    with listening(bus, store) as a:
        c = MllpClient("127.0.0.1", a.port)
        c.write(b"".join(encode(m) for m in msgs))
        first = c.read_ack()
    rest = [c.read_ack() for _ in range(199)]  # the listener has stopped: all were still answered
    c.close()
    assert [first.code, *(x.code for x in rest)] == ["AA"] * 200
    assert len(drain(bus)) == 200


def test_no_content_in_logs(bus: EmbeddedBus, store: Store) -> None:
    raw = synthetic_adt(71, message_type="ORM")
    pid = raw.split(b"PID|1||", 1)[1].split(b"^", 1)[0].decode()
    with capture_logs() as logs, listening(bus, store) as a, MllpClient("127.0.0.1", a.port) as c:
        c.send(raw)
        c.send(b"PID|1||" + pid.encode() + b"\r")
    assert logs and pid not in repr(logs)


def test_many_connections_at_once(bus: EmbeddedBus, store: Store) -> None:
    results: dict[int, list[str]] = {}

    def client(k: int) -> None:
        with MllpClient("127.0.0.1", port) as c:
            results[k] = [x.code for x in c.send_many([synthetic_adt(1000 * k + i) for i in range(50)])]

    with listening(bus, store) as a:
        port = a.port
        threads = [threading.Thread(target=client, args=(k,)) for k in range(1, 11)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert all(codes == ["AA"] * 50 for codes in results.values()) and len(results) == 10
    assert len(drain(bus)) == 500


def test_strict_mode_answers_ae_and_dead_letters(bus: EmbeddedBus, store: Store) -> None:
    invalid = synthetic_adt(81).replace(b"EVN|A01|20240102030405\r", b"")
    with listening(bus, store, strict=True) as a, MllpClient("127.0.0.1", a.port) as c:
        acks = c.send_many([synthetic_adt(80), invalid])
    assert [x.code for x in acks] == ["AA", "AE"] and b"HL7_STRICT_MISSING" in acks[1].raw
    rejected = [e for e in drain(bus) if e.rejection is not None]
    assert [str(e.rejection) for e in rejected] == ["HL7_STRICT_MISSING: ADT_A01.EVN"]


def test_strict_mode_answers_ae_with_its_err_even_when_validation_is_slow(
    bus: EmbeddedBus, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer is written only after the off-loop triage filled in the error: a slow validator (as under
    load) must not leave the AE without its ERR segment."""
    import mappings.hl7v2.strict as strict

    real = strict.validate_strict

    def slow(raw: bytes) -> list[str]:
        time.sleep(0.3)
        return real(raw)

    monkeypatch.setattr(strict, "validate_strict", slow)
    invalid = synthetic_adt(81).replace(b"EVN|A01|20240102030405\r", b"")
    with listening(bus, store, strict=True) as a, MllpClient("127.0.0.1", a.port) as c:
        acks = c.send_many([invalid])
    assert [x.code for x in acks] == ["AE"] and b"HL7_STRICT_MISSING" in acks[0].raw


def test_stop_while_the_bus_is_down_gives_up_retrying_and_never_acks(tmp_path: Path, store: Store) -> None:
    broken = EmbeddedBus(tmp_path / "q.db")
    broken.close()
    c = None
    with listening(broken, store, bus_retry_seconds=600) as a:  # stopping must not wait for the retries
        c = MllpClient("127.0.0.1", a.port, timeout=30)
        c.write(encode(synthetic_adt(91)))
        time.sleep(0.3)  # let the frame reach the publisher
    assert c.sock.recv(100) == b""
    c.close()


def test_a_cancelled_application_ack_is_not_sent(bus: EmbeddedBus, store: Store) -> None:
    """An application ACK waiting for the one before it is cancelled (its connection broke): it ends
    cancelled and sends nothing, instead of taking the earlier one's cancellation for its own end."""
    from adapters.handoff import Handoff
    from adapters.mllp import Settings
    from adapters.mllp.commits import CommitWatch
    from adapters.mllp.lookups import StoreLookups
    from adapters.mllp.publisher import Publisher
    from adapters.mllp.server import Answer, Connection
    from mappings.hl7v2.parser import parse_header

    async def go() -> tuple[bool, bytes]:
        accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        server = await asyncio.start_server(lambda r, w: accepted.put_nowait((r, w)), "127.0.0.1", 0)
        client_r, client_w = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        r, w = await accepted.get()
        lookups = StoreLookups(store)
        conn = Connection(
            r,
            w,
            name="t",
            settings=Settings(type="mllp", port=0),
            publisher=Publisher(Handoff("t", bus, "mllp"), lookups),
            commits=CommitWatch(lookups),
            strict=None,
        )
        head = parse_header(synthetic_adt(1).replace(b"|P|2.5\r", b"|P|2.5|||AL|AL\r"))
        earlier: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # the ACK before, waiting
        task = asyncio.ensure_future(conn._app_ack(Answer(head, None), "AA", None, earlier))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.wait([task])
        w.close()  # the server side closes: the client reads what was sent, then the end
        sent = await asyncio.wait_for(client_r.read(), 10)
        client_w.close()
        server.close()
        await lookups.close()
        return task.cancelled(), sent

    cancelled, sent = asyncio.run(go())
    assert cancelled and sent == b""


def test_each_answer_waits_for_its_commit_once(bus: EmbeddedBus, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """ack_after commit: one commit wait per accepted message, started when it is confirmed (strict
    validation, off the event loop, too)."""
    from adapters.mllp.commits import CommitWatch

    waits: list[str] = []
    real = CommitWatch.outcome

    async def counted(self: CommitWatch, envelope_id: str, timeout: float) -> str | None:
        waits.append(envelope_id)
        return await real(self, envelope_id, timeout)

    monkeypatch.setattr(CommitWatch, "outcome", counted)
    for strict in (False, True):
        waits.clear()
        with (
            working(bus, store),
            listening(bus, store, ack_after="commit", strict=strict) as a,
            MllpClient("127.0.0.1", a.port) as c,
        ):
            acks = c.send_many([synthetic_adt(200 + i) for i in range(20)] + [b"MSH|not a message"])
        assert [x.code for x in acks] == ["AA"] * 20 + ["AR"]
        assert len(waits) == len(set(waits)) == 20
