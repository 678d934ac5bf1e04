"""Cron schedules for CSV pick-up (``croniter``), evaluated in Europe/Oslo time.

``schedule: "30 2 * * *"`` picks up files at 02:30 local time; at each tick the adapter imports
every matching stable file, then sleeps until the next tick. ``None`` means poll continuously.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")


def validate_cron(expr: str) -> str:
    """``expr`` if it is a valid 5-field cron expression; ValueError (for pydantic) otherwise."""
    from croniter import croniter  # imported on use: engine start-up stays fast without schedules

    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise ValueError("not a valid cron expression (5 fields: minute hour day month weekday)")
    return expr


def next_tick(expr: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``expr`` fires (timezone-aware, Europe/Oslo)."""
    from croniter import croniter

    base = after.astimezone(OSLO)
    tick: datetime = croniter(expr, base).get_next(datetime)
    return tick


def run_schedule(
    stop: threading.Event, expr: str, tick: Callable[[], None], now: Callable[[], datetime] = lambda: datetime.now(OSLO)
) -> None:
    """Call ``tick()`` at every firing of ``expr`` until ``stop`` is set."""
    due = next_tick(expr, now())
    while not stop.is_set():
        wait = (due - now()).total_seconds()
        if wait > 0:
            stop.wait(min(wait, 60.0))  # re-check the wall clock at least every minute
            continue
        tick()
        due = next_tick(expr, max(now(), due))
