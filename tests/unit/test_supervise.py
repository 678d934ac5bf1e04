"""Supervision (engine.supervise): a crashed service is restarted with exponential backoff and shows as
restarting meanwhile; each crash is logged once with the error's type only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from structlog.testing import capture_logs

from engine.supervise import Backoff, Health, Supervisor


class Flaky:
    """A service that raises on its first ``crashes`` runs, then runs until stopped."""

    def __init__(self, crashes: int) -> None:
        self.crashes, self.runs = crashes, 0
        self.running = threading.Event()

    def __call__(self, stop: threading.Event) -> None:
        self.runs += 1
        if self.runs <= self.crashes:
            raise LookupError("a message that must not be logged 01010112345")
        self.running.set()
        stop.wait()


def _until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def test_backoff_doubles_to_its_ceiling_and_starts_over_after_a_healthy_run() -> None:
    b = Backoff(first=0.5, most=30.0, healthy=60.0)
    delays, d = [], 0.0
    for _ in range(8):
        d = b.next(d, ran_for=1.0)
        delays.append(d)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert b.next(30.0, ran_for=61.0) == 0.5


def test_a_crashing_service_is_restarted_with_backoff_and_visible_meanwhile() -> None:
    sup, stop, svc = Supervisor(Backoff(first=0.2, most=0.4)), threading.Event(), Flaky(crashes=3)
    seen: set[str] = set()
    with capture_logs() as logs:
        sup.spawn("adapter-x", svc, stop, adapter=True)
        assert _until(lambda: seen.add(sup.states()["adapter-x"]) or svc.running.is_set())
        assert sup.states() == {"adapter-x": "running"} and sup.crashes == 3 and "restarting" in seen
        assert not Health(services={"worker-0": "running", "adapter-x": "restarting"}).ready
        stop.set()
        assert sup.join(time.monotonic() + 5)
    assert sup.states() == {"adapter-x": "stopped"}
    crashed = [e for e in logs if e["event"] == "service.crashed"]
    assert [e["error_type"] for e in crashed] == ["LookupError"] * 3
    assert all("01010112345" not in str(e) for e in logs)
    assert [e["after_s"] for e in logs if e["event"] == "service.restarted"] == [0.2, 0.4, 0.4]


def test_stop_during_the_backoff_ends_the_service() -> None:
    sup, stop = Supervisor(Backoff(first=30.0)), threading.Event()
    sup.spawn("worker-0", Flaky(crashes=1), stop)
    assert _until(lambda: sup.states()["worker-0"] == "restarting")
    stop.set()
    assert sup.join(time.monotonic() + 5) and sup.states()["worker-0"] == "stopped"


def test_a_service_that_returns_is_stopped_not_restarted() -> None:
    sup, runs = Supervisor(), []
    sup.spawn("worker-0", lambda _stop: runs.append(1), threading.Event())
    assert sup.join(time.monotonic() + 5)
    assert runs == [1] and sup.states() == {"worker-0": "stopped"} and sup.crashes == 0


def test_states_can_be_read_while_services_are_spawned() -> None:
    """The ops API reads the states from its own thread while the runtime still spawns services."""
    sup, stop, errors = Supervisor(), threading.Event(), []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                sup.states()
                _ = sup.crashes
            except RuntimeError as exc:  # dictionary changed size during iteration
                errors.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(200):
            sup.spawn(f"svc-{i}", lambda s: None, stop)
    finally:
        done.set()
        reader.join(10)
        stop.set()
    assert not errors and len(sup.states()) == 200
