"""Helpers shared by the MLLP tests: run a listener in a thread, read what reached the bus."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adapters.mllp import MllpAdapter, Settings, build
from engine.bus import Bus
from engine.envelope import Envelope

#: the broker of tests/conftest.py, as engine.config accepts it (guest's password is implied)
AMQP = "amqp://guest@127.0.0.1:5672/%2F"


@dataclass
class Runtime:
    bus: Any
    keys: Any


@contextlib.contextmanager
def listening(bus: Bus, keys: Any, **settings: Any) -> Iterator[MllpAdapter]:
    """Start an MLLP listener on a free port; stop it (and wait for the drain) on exit."""
    s = Settings(type="mllp", port=0, **settings)
    adapter = build("mllp-test", s, Runtime(bus, keys))
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            adapter.run(stop)
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test below
            errors.append(exc)

    t = threading.Thread(target=run, name="mllp-test", daemon=True)
    t.start()
    assert adapter.ready.wait(10), errors
    try:
        yield adapter
    finally:
        stop.set()
        t.join(60)
        assert not t.is_alive(), "listener did not stop"
        assert not errors, errors


def drain(bus: Bus, expected: int | None = None, timeout: float = 10.0) -> list[Envelope]:
    """Fetch and ack everything on the bus (until ``expected`` envelopes or a quiet fetch)."""
    consumer = bus.consumer(prefetch=1000)
    got: list[Envelope] = []
    try:
        while expected is None or len(got) < expected:
            batch = consumer.fetch(1000, timeout if expected is not None else 0.5)
            if not batch:
                break
            got += [d.envelope for d in batch]
            consumer.ack(batch)
    finally:
        consumer.close()
    return got


@contextlib.contextmanager
def working(bus: Bus, store: Any) -> Iterator[None]:
    """The real worker consuming in a thread while the block runs (commits for ack_after: commit and the
    enhanced-mode application ACK)."""
    from engine.worker import Mapper, Worker

    worker = Worker(bus, store, Mapper(), batch_size=500, batch_wait=0.02)
    stop = threading.Event()
    t = threading.Thread(target=worker.run, args=(stop,), name="mllp-test-worker", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(30)


def run_worker(bus: Bus, store: Any, expected: int) -> None:
    """Consume with the real worker until ``expected`` envelopes were committed (or a quiet spell)."""
    from engine.worker import Mapper, Worker

    worker = Worker(bus, store, Mapper(), batch_size=500, batch_wait=0.05)
    consumer = bus.consumer(2000)
    done, idle = 0, 0
    try:
        while done < expected and idle < 40:
            n = worker.step(consumer)
            done, idle = done + n, 0 if n else idle + 1
    finally:
        consumer.close()
