"""Shared fixtures: real RabbitMQ and PostgreSQL on 127.0.0.1, isolated per test.

Tests that need a service skip when it is absent, except when ``ENJOURNAL_REQUIRE_SERVICES=1``
(set by ``.ci/run``), where they fail.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE = os.environ.get("ENJOURNAL_REQUIRE_SERVICES") == "1"
RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672
PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_BASE_URL = os.environ.get("ENJOURNAL_TEST_PG_URL", f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test")
RABBIT_URL = os.environ.get("ENJOURNAL_TEST_AMQP_URL", f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/%2F")
REPO = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO.parent / "shared" / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _need(service: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    if REQUIRE:
        pytest.fail(f"{service} on {host}:{port} is required (ENJOURNAL_REQUIRE_SERVICES=1) but unreachable")
    pytest.skip(f"{service} not reachable on {host}:{port}")


@pytest.fixture(scope="session")
def rabbit_url() -> str:
    _need("RabbitMQ", RABBIT_HOST, RABBIT_PORT)
    return RABBIT_URL


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    _need("PostgreSQL", PG_HOST, PG_PORT)
    return PG_BASE_URL


@pytest.fixture
def pg_url(pg_base_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    import sqlalchemy as sa

    schema = "t_" + uuid.uuid4().hex[:12]
    eng = sa.create_engine(pg_base_url)
    with eng.begin() as c:
        c.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield f"{pg_base_url}?options=-csearch_path%3D{schema}"
    with eng.begin() as c:
        c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    eng.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Parametrised over both databases: the same code, the same properties."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    return request.getfixturevalue("pg_url")  # type: ignore[no-any-return]


@pytest.fixture
def amqp_names() -> dict[str, str]:
    """Unique exchange/queue names so tests never share broker state."""
    tag = uuid.uuid4().hex[:10]
    return {
        "exchange": f"t.{tag}.inbound",
        "queue": f"t.{tag}.work",
        "dead_letter_exchange": f"t.{tag}.dlx",
        "dead_letter_queue": f"t.{tag}.dead",
    }


# -- No personal data in logs: every structlog event of the whole run is checked ------------------
_LOG_VIOLATIONS: list[str] = []


def _check_event(_logger: object, _name: str, event_dict: dict) -> dict:
    """Runs before masking: records (without the value) any event that carries a valid national id."""
    from engine.ids import find_valid_numbers

    text = " ".join(f"{k}={v}" for k, v in event_dict.items() if k != "exc_info")
    if find_valid_numbers(text) and not event_dict.get("pii_masking_selftest"):
        _LOG_VIOLATIONS.append(str(event_dict.get("event", "?")))
    return event_dict


def pytest_configure(config: pytest.Config) -> None:
    import structlog

    from engine import logging as elog

    original = elog.configure

    def configure(level: str = "info", fmt: str = "console", stream: object = None) -> None:
        original(level, fmt, stream)
        procs = structlog.get_config()["processors"]
        structlog.configure(processors=[*procs[:-2], _check_event, *procs[-2:]])

    elog.configure = configure  # type: ignore[assignment]
    configure("debug")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _LOG_VIOLATIONS:
        import sys

        sys.stderr.write(
            f"\nPERSONAL DATA IN LOGS: {len(_LOG_VIOLATIONS)} event(s) carried a valid national "
            f"identity number: {sorted(set(_LOG_VIOLATIONS))}\n"
        )
        session.exitstatus = 1


# -- Real buses and stores, closed after the test ------------------------------------------------
@pytest.fixture
def rabbit_bus(rabbit_url: str, amqp_names: dict[str, str]) -> Iterator[object]:
    """A RabbitBus on the local broker with names of its own; its topology is deleted after the test."""
    from engine.bus.rabbit import RabbitBus
    from engine.config import RabbitBusConfig

    b = RabbitBus(RabbitBusConfig(url="amqp://guest@127.0.0.1:5672/%2F", **amqp_names))
    b.declare()
    yield b
    b.delete_topology()
    b.close()


@pytest.fixture
def embedded_bus(tmp_path: Path) -> Iterator[object]:
    from engine.bus.embedded import EmbeddedBus

    b = EmbeddedBus(tmp_path / "queue.db")
    yield b
    b.close()


def _store(url: str) -> Iterator[object]:
    from engine.store import Store

    s = Store(url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[object]:
    yield from _store(sqlite_url)


@pytest.fixture
def any_store(store_url: str) -> Iterator[object]:
    """A Store on SQLite and on PostgreSQL (parametrised through ``store_url``)."""
    yield from _store(store_url)
