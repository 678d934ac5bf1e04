"""The MLLP listener on the real RabbitMQ bus, the real store and the worker.

10,000 messages over 8 connections (every one ACKed AA exactly once, present once in the journal),
a malformed frame in the middle of a stream, a resend answered as a duplicate, TLS with client
certificates from a CA made here with the ``openssl`` CLI, and no ACK at all while the broker is
unreachable.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from adapters.mllp.client import MllpClient, send_load, synthetic_adt
from adapters.mllp.framing import encode
from adapters.mllp.tls import client_context
from engine.bus.rabbit import RabbitBus
from engine.store import Store
from tests.helpers import ack_code, unreachable_rabbit_bus
from tests.unit.mllp.helpers import drain, listening, run_worker

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def bus(rabbit_bus: RabbitBus) -> RabbitBus:
    return rabbit_bus


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store


@pytest.mark.slow
def test_10k_messages_over_8_connections(bus: RabbitBus, store: Store) -> None:
    msgs = [synthetic_adt(i) for i in range(10_000)]
    with listening(bus, store) as a:
        result = asyncio.run(send_load("127.0.0.1", a.port, msgs, connections=8))
    assert Counter(x.code for x in result.acks) == {"AA": 10_000}
    per_id = Counter(x.control_id for x in result.acks)
    assert len(per_id) == 10_000 and set(per_id.values()) == {1}
    assert bus.depth()["work"] > 0  # AMQP messages: the publisher's coalesced batches travel as frames
    run_worker(bus, store, 10_000)
    assert bus.depth()["work"] == 0
    assert store.counts()["received"] == {"mllp-test": 10_000}
    assert not store.dead_letters()
    assert ack_code(store, "HL7|LOADGEN|TEST|MSG00009999") == "AA"


def test_malformed_frame_in_the_middle_and_duplicate_resend(bus: RabbitBus, store: Store) -> None:
    good = [synthetic_adt(i) for i in range(20)]
    stream = good[:10] + [b"MSH|^~\\&|LOADGEN|TEST|||2024|||\rPID|1\r"] + good[10:]
    with listening(bus, store) as a, MllpClient("127.0.0.1", a.port) as c:
        acks = c.send_many(stream)
        assert [x.code for x in acks] == ["AA"] * 10 + ["AR"] + ["AA"] * 10
        assert b"HL7_BAD_MSH" in acks[10].raw
        again = c.send(good[3])[0]
        assert again.code == "AA" and again.control_id == "MSG00000003"
    run_worker(bus, store, 21)
    assert store.counts()["received"] == {"mllp-test": 21}  # 20 good + the rejected one, no duplicate
    dead = store.dead_letters()
    assert [d["reason_code"] for d in dead] == ["HL7_BAD_MSH"]


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A test CA signing a server and a client certificate, plus a rogue CA and its client."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "rogue-ca"):
        _openssl(
            tmp_path,
            "req",
            "-x509",
            *ec,
            "-keyout",
            f"{ca}.key",
            "-out",
            f"{ca}.crt",
            "-days",
            "2",
            "-subj",
            f"/CN={ca}",
        )
    for name, ca in (("server", "ca"), ("client", "ca"), ("rogue", "rogue-ca")):
        _openssl(tmp_path, "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        _openssl(
            tmp_path,
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            f"{ca}.crt",
            "-CAkey",
            f"{ca}.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
        )
    return tmp_path


def _refused(port: int, ctx: ssl.SSLContext) -> bool:
    try:
        with MllpClient("127.0.0.1", port, ssl_context=ctx, timeout=5) as c:
            c.send(synthetic_adt(999))
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    return False


def test_tls_requires_a_client_certificate_from_the_ca(bus: RabbitBus, store: Store, pki: Path) -> None:
    tls = {"certfile": pki / "server.crt", "keyfile": pki / "server.key", "cafile": pki / "ca.crt"}
    with listening(bus, store, tls=tls) as a:
        ok = client_context(pki / "ca.crt", pki / "client.crt", pki / "client.key")
        with MllpClient("127.0.0.1", a.port, ssl_context=ok) as c:
            assert [x.code for x in c.send_many([synthetic_adt(1), synthetic_adt(2)])] == ["AA", "AA"]
        assert _refused(a.port, client_context(pki / "ca.crt"))  # no certificate
        assert _refused(a.port, client_context(pki / "ca.crt", pki / "rogue.crt", pki / "rogue.key"))
        with socket.create_connection(("127.0.0.1", a.port), timeout=5) as plain:  # no TLS at all
            plain.sendall(encode(synthetic_adt(3)))
            try:
                assert b"MSA" not in plain.recv(1000)
            except OSError:
                pass
    run_worker(bus, store, 2)
    assert store.counts()["received"] == {"mllp-test": 2} and bus.depth()["work"] == 0


def test_no_ack_while_the_broker_is_unreachable(store: Store, amqp_names: dict[str, str], rabbit_url: str) -> None:
    down = unreachable_rabbit_bus(amqp_names, connect_timeout=1.0)
    try:
        with listening(down, store, bus_retry_seconds=1.0) as a, MllpClient("127.0.0.1", a.port, timeout=30) as c:
            c.write(encode(synthetic_adt(1)))
            assert c.sock.recv(100) == b""  # closed without a single byte of ACK
    finally:
        down.close()
    assert ack_code(store, "HL7|LOADGEN|TEST|MSG00000001") is None


def test_resend_after_restart_is_found_in_the_store(bus: RabbitBus, any_store: Store) -> None:
    """A listener with an empty cache answers a resend with the original code from the store (PostgreSQL:
    the look-up on the event loop; SQLite: on a pool thread) and publishes only new messages."""
    with listening(bus, any_store) as a, MllpClient("127.0.0.1", a.port) as c:
        assert [x.code for x in c.send_many([synthetic_adt(i) for i in range(5)])] == ["AA"] * 5
    run_worker(bus, any_store, 5)
    with listening(bus, any_store, dedup_lookup_budget_ms=10_000) as a, MllpClient("127.0.0.1", a.port) as c:
        acks = c.send_many([synthetic_adt(2), synthetic_adt(7)])
    assert [(x.code, x.control_id) for x in acks] == [("AA", "MSG00000002"), ("AA", "MSG00000007")]
    assert [e.dedup_key for e in drain(bus)] == ["HL7|LOADGEN|TEST|MSG00000007"]
