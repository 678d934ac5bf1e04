"""The MLLP listener's event-loop clients against the real services: the RabbitMQ publisher on the loop
(:mod:`engine.bus.rabbit_loop`) and the PostgreSQL processed-key look-up (:mod:`engine.store.keys_async`)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from typing import Any

import psycopg
import pytest

from engine.bus.rabbit import RabbitBus
from engine.bus.rabbit_loop import LoopPublisher
from engine.envelope import Envelope
from engine.errors import BusUnavailable
from engine.store import Store
from tests.helpers import ack_codes, unreachable_rabbit_bus
from tests.unit.mllp.helpers import drain


def _envelopes(n: int, tag: str = "loop") -> list[Envelope]:
    return [
        Envelope.build(
            f"MSH|^~\\&|A|B|||2024||ADT^A08|{tag}{i}|P|2.5\r".encode(),
            adapter="loop-test",
            mapping="hl7v2",
            content_type="application/hl7-v2",
            dedup_key=f"HL7|A|B|{tag}{i}",
        )
        for i in range(n)
    ]


async def _started(bus: RabbitBus) -> LoopPublisher:
    pub = bus.loop_publisher()
    pub.start()
    return pub


@pytest.mark.rabbitmq
def test_publishes_with_confirms_and_the_messages_arrive(rabbit_bus: RabbitBus) -> None:
    sent = _envelopes(130)

    async def go() -> None:
        pub = await _started(rabbit_bus)
        try:
            await pub.publish(sent[:1])
            await asyncio.gather(pub.publish(sent[1:65]), pub.publish(sent[65:]))
        finally:
            await pub.close()

    asyncio.run(go())
    got = drain(rabbit_bus, expected=130)
    assert sorted(e.id for e in got) == sorted(e.id for e in sent)
    assert {e.raw for e in got} == {e.raw for e in sent}


def _close_from_the_broker(local_port: int) -> None:
    """``rabbitmqctl close_connection`` of the connection from ``local_port`` (as when the broker restarts)."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "peer_port"], capture_output=True, text=True, check=True
    ).stdout
    pids = [line.split()[0] for line in out.splitlines() if line.split()[1:] == [str(local_port)]]
    assert pids, "connection not found"
    subprocess.run(["rabbitmqctl", "-q", "close_connection", pids[0], "test"], capture_output=True, check=True)


@pytest.mark.rabbitmq
def test_a_lost_connection_fails_what_waits_then_reconnects(rabbit_bus: RabbitBus) -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl not available")

    async def go() -> tuple[bool, bool]:
        pub = await _started(rabbit_bus)
        try:
            await pub.publish(_envelopes(1, "a"))
            assert pub._conn is not None
            port = pub._conn._transport._sock.getsockname()[1]
            await asyncio.get_running_loop().run_in_executor(None, _close_from_the_broker, port)
            lost = False
            try:
                await pub.publish(_envelopes(1, "b"))
            except BusUnavailable:
                lost = True
            end = time.monotonic() + 10
            while not pub.ready and time.monotonic() < end:
                await asyncio.sleep(0.05)
            await pub.publish(_envelopes(1, "c"))  # on the new connection
            return lost, pub.ready
        finally:
            await pub.close()

    lost, ready = asyncio.run(go())
    assert ready
    got = {e.dedup_key for e in drain(rabbit_bus)}
    # "b" either failed (its sender would get no ACK and resend) or was confirmed before the socket died
    assert {"HL7|A|B|a0", "HL7|A|B|c0"} <= got and (lost or "HL7|A|B|b0" in got)


@pytest.mark.rabbitmq
def test_unroutable_messages_fail_their_batch(rabbit_bus: RabbitBus) -> None:
    cfg = rabbit_bus.cfg.model_copy(update={"exchange": rabbit_bus.cfg.dead_letter_exchange + ".nobody"})
    other = RabbitBus(cfg)
    conn = other._blocking()
    conn.channel().exchange_declare(cfg.exchange, exchange_type="direct", durable=False, auto_delete=False)

    async def go() -> None:
        pub = await _started(other)
        try:
            with pytest.raises(BusUnavailable, match="UNROUTABLE"):
                await pub.publish(_envelopes(2))
        finally:
            await pub.close()

    try:
        asyncio.run(go())
    finally:
        conn.channel().exchange_delete(cfg.exchange)
        conn.close()


@pytest.mark.rabbitmq
def test_a_channel_closed_by_the_broker_fails_the_batch_then_recovers(rabbit_bus: RabbitBus) -> None:
    """Publishing to an exchange deleted meanwhile: the broker closes the channel (404); the batch fails and
    the publisher opens a new connection, which works once the topology is back."""

    async def go() -> None:
        pub = await _started(rabbit_bus)
        try:
            await pub.publish(_envelopes(1, "a"))
            conn = rabbit_bus._blocking()
            conn.channel().exchange_delete(rabbit_bus.cfg.exchange)
            conn.close()
            with pytest.raises(BusUnavailable):
                await pub.publish(_envelopes(1, "b"))
            await asyncio.get_running_loop().run_in_executor(None, rabbit_bus.declare)
            end = time.monotonic() + 10
            while not pub.ready and time.monotonic() < end:
                await asyncio.sleep(0.05)
            await pub.publish(_envelopes(1, "c"))
        finally:
            await pub.close()

    asyncio.run(go())
    assert {e.dedup_key for e in drain(rabbit_bus)} == {"HL7|A|B|a0", "HL7|A|B|c0"}


@pytest.mark.rabbitmq
def test_no_broker_fails_fast_and_a_closed_publisher_refuses(amqp_names: dict[str, str]) -> None:
    down = unreachable_rabbit_bus(amqp_names, connect_timeout=0.5)

    async def go() -> float:
        pub = await _started(down)
        t0 = time.monotonic()
        with pytest.raises(BusUnavailable):
            await pub.publish(_envelopes(1))
        took = time.monotonic() - t0
        await pub.close()
        with pytest.raises(BusUnavailable):
            await pub.publish(_envelopes(1))
        return took

    assert asyncio.run(go()) < 5


@pytest.mark.postgres
def test_async_key_reader_finds_keys_and_recovers_a_lost_connection(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        store.remember([("HL7|A|B|1", "env-1", "AA", "1" * 32), ("HL7|A|B|2", "env-2", "AR", "2" * 32)])
        reader = store.async_key_reader()
        assert reader is not None

        async def go() -> list[Any]:
            out: list[Any] = [ack_codes(await reader.processed_versions(["HL7|A|B|1", "HL7|A|B|2", "HL7|A|B|3"]))]
            assert reader._conn is not None
            pid = reader._conn.info.backend_pid
            with psycopg.connect(
                pg_url.replace("postgresql+psycopg://", "postgresql://", 1).split("?")[0], autocommit=True
            ) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            try:
                out.append(ack_codes(await reader.processed_versions(["HL7|A|B|1"])))
            except psycopg.Error as exc:
                out.append(type(exc).__name__)
            out.append(ack_codes(await reader.processed_versions(["HL7|A|B|1"])))  # a new connection
            out.append(ack_codes(await reader.processed_versions([])))
            await reader.close()
            return out

        first, after_kill, again, empty = asyncio.run(go())
        assert first == {"HL7|A|B|1": "AA", "HL7|A|B|2": "AR"}
        assert after_kill in ("AdminShutdown", "OperationalError", {"HL7|A|B|1": "AA"})
        assert again == {"HL7|A|B|1": "AA"} and empty == {}
    finally:
        store.close()


@pytest.mark.postgres
def test_concurrent_async_look_ups_each_get_their_own_answer(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        store.remember([(f"HL7|A|B|{i}", f"env-{i}", "AA" if i % 4 else "AE", f"{i:032x}") for i in range(0, 40, 2)])
        reader = store.async_key_reader()
        assert reader is not None

        async def go() -> list[dict[str, dict[str, tuple[str, str]]]]:
            try:
                return await asyncio.gather(
                    *(reader.processed_versions([f"HL7|A|B|{i}", f"HL7|A|B|{i + 1}"]) for i in range(0, 40, 2))
                )
            finally:
                await reader.close()

        answers = asyncio.run(go())
        assert answers == [
            {f"HL7|A|B|{i}": {f"{i:032x}": (f"env-{i}", "AA" if i % 4 else "AE")}} for i in range(0, 40, 2)
        ]
    finally:
        store.close()


def test_no_async_key_reader_on_sqlite(sqlite_store: Store) -> None:
    assert sqlite_store.async_key_reader() is None
