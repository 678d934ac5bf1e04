"""``enjournal check`` against PostgreSQL and RabbitMQ: it reads the schema version of a fresh schema without
creating a table, and sees that the queues are not declared without declaring them."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest
import sqlalchemy as sa

from engine.check import check_bus, check_store, exit_status, run_checks
from engine.config import parse_config
from engine.store import Store
from engine.store.migrations import STEPS

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]


def _tables(url: str) -> list[str]:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            return sorted(sa.inspect(c).get_table_names())
    finally:
        eng.dispose()


def _queue_exists(name: str) -> bool:
    conn = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    try:
        conn.channel().queue_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if conn.is_open:
            conn.close()


def test_check_a_fresh_postgresql_schema_creates_no_table(pg_url: str) -> None:
    cfg = parse_config({"store": {"url": pg_url}})
    finding = check_store(cfg.store)
    assert finding.ok and f"schema version 0, migrations pending: {len(STEPS)}" in finding.detail
    assert _tables(pg_url) == []
    Store(pg_url).close()
    assert "migrations pending" not in check_store(cfg.store).detail


def test_check_undeclared_queues_declares_none(rabbit_url: str, amqp_names: dict[str, str]) -> None:
    cfg = parse_config({"bus": {"kind": "rabbitmq", "url": "amqp://guest@127.0.0.1:5672/%2F", **amqp_names}})
    finding = check_bus(cfg.bus)
    assert finding.ok and "queues not declared yet" in finding.detail
    assert not _queue_exists(amqp_names["queue"]) and not _queue_exists(amqp_names["dead_letter_queue"])


def test_check_unreachable_broker_is_exit_2(pg_url: str, amqp_names: dict[str, str]) -> None:
    cfg = parse_config(
        {"bus": {"kind": "rabbitmq", "url": "amqp://guest@127.0.0.1:1/%2F", **amqp_names}, "store": {"url": pg_url}}
    )
    findings = run_checks(cfg)
    assert [f.name for f in findings if not f.ok] == ["bus"] and exit_status(findings) == 2


def test_check_declared_queues_is_plain_ok(rabbit_bus: object, amqp_names: dict[str, str]) -> None:
    cfg = parse_config({"bus": {"kind": "rabbitmq", "url": "amqp://guest@127.0.0.1:5672/%2F", **amqp_names}})
    finding = check_bus(cfg.bus)
    assert finding.ok and finding.detail == "ok (rabbitmq)"
