"""Benchmark plumbing on the real broker: a latency phase starts only once the workers consume."""

from __future__ import annotations

import pytest

from bench.proc import wait_consumers

pytestmark = pytest.mark.rabbitmq


def test_wait_consumers_returns_once_the_work_queue_has_them(rabbit_bus, amqp_names) -> None:
    with pytest.raises(RuntimeError, match="0 of 1 consumers"):
        wait_consumers(amqp_names, 1, timeout=0.2)
    consumer = rabbit_bus.consumer(10)
    try:
        wait_consumers(amqp_names, 1, timeout=10)
        with pytest.raises(RuntimeError, match="1 of 2 consumers"):
            wait_consumers(amqp_names, 2, timeout=0.2)
    finally:
        consumer.close()


def test_wait_consumers_waits_for_a_queue_not_declared_yet(rabbit_url, amqp_names) -> None:
    with pytest.raises(RuntimeError, match="0 of 1 consumers"):
        wait_consumers(amqp_names, 1, timeout=0.2)
