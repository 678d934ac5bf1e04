"""Cron schedule (croniter) in Europe/Oslo time."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters.csv.schedule import next_tick, run_schedule, validate_cron

OSLO = ZoneInfo("Europe/Oslo")


def test_validate() -> None:
    assert validate_cron("30 2 * * *") == "30 2 * * *"
    for bad in ("bad", "61 * * * *", "* * * *"):
        with pytest.raises(ValueError):
            validate_cron(bad)


def test_next_tick_is_local_time() -> None:
    t = next_tick("30 2 * * *", datetime(2026, 7, 1, 12, 0, tzinfo=OSLO))
    assert t == datetime(2026, 7, 2, 2, 30, tzinfo=OSLO) and t.utcoffset() == timedelta(hours=2)


def test_run_schedule_ticks_with_a_fake_clock() -> None:
    now = [datetime(2026, 1, 1, 0, 0, 30, tzinfo=OSLO)]
    stop = threading.Event()
    ticks: list[datetime] = []

    def tick() -> None:
        ticks.append(now[0])
        if len(ticks) == 3:
            stop.set()

    class FastEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            now[0] += timedelta(seconds=timeout or 0)
            return self.is_set()

    fast = FastEvent()
    stop_proxy = fast
    orig_set = stop.set
    stop.set = lambda: (orig_set(), fast.set())[0]  # type: ignore[method-assign]
    run_schedule(stop_proxy, "*/5 * * * *", tick, now=lambda: now[0])
    assert [t.minute for t in ticks] == [5, 10, 15]
