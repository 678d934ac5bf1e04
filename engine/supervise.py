"""Supervision of an engine's services (adapters, worker threads, worker processes).

* A service whose ``run(stop)`` raises is restarted after a pause that starts at ``Backoff.first``
  (0.5 s) and doubles up to ``Backoff.most`` (30 s); it starts over from ``first`` once the service
  had run ``Backoff.healthy`` seconds (60 s) before it crashed. Each crash logs ``service.crashed``
  (the service's name and the error's type, never its message) and each restart ``service.restarted``
  (and counts it: ``enjournal_service_restarts``).
* A service that returns ends (``stopped``); ``stop`` set during a pause ends it too.
* :class:`Health` is what ``/health`` and ``enjournal status`` report: ready only while every service runs.
  Reading it is cheap (no I/O): the states are kept as the services change.

The worker closes its consumer when anything escapes its ``run`` (see :mod:`engine.worker`), so the
deliveries it held go back to the queue before it is restarted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict

from engine import metrics

log = structlog.get_logger(__name__)

RUNNING, RESTARTING, STOPPED, FAILED = "running", "restarting", "stopped", "failed"


class Health(BaseModel):
    """The state of each service of one engine process: ``running``, ``restarting`` (waiting out its
    backoff after a crash), ``stopped`` (ended on request) or ``failed``."""

    model_config = ConfigDict(frozen=True)

    services: dict[str, str] = {}

    @property
    def ready(self) -> bool:
        return all(state == "running" for state in self.services.values())

    @property
    def down(self) -> list[str]:
        return sorted(name for name, state in self.services.items() if state != "running")


@dataclass(frozen=True)
class Backoff:
    """Pauses between restarts: ``first`` doubling to ``most``; back to ``first`` after ``healthy`` s of running."""

    first: float = 0.5
    most: float = 30.0
    healthy: float = 60.0

    def next(self, delay: float, ran_for: float) -> float:
        """The pause before this restart, given the last pause and how long the service ran."""
        if delay <= 0 or ran_for >= self.healthy:
            return self.first
        return min(delay * 2, self.most)


@dataclass
class _Service:
    name: str
    adapter: bool
    thread: threading.Thread | None = None
    state: str = RUNNING
    crashes: int = 0


class Supervisor:
    """Runs each service in a thread of its own and restarts it when it crashes."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()
        self._services: dict[str, _Service] = {}

    def spawn(
        self, name: str, run: Callable[[threading.Event], Any], stop: threading.Event, *, adapter: bool = False
    ) -> None:
        svc = _Service(name, adapter)
        svc.thread = threading.Thread(target=self._loop, args=(svc, run, stop), name=name, daemon=True)
        self._services[name] = svc
        svc.thread.start()

    def _loop(self, svc: _Service, run: Callable[[threading.Event], Any], stop: threading.Event) -> None:
        delay = 0.0
        try:
            while True:
                svc.state, started = RUNNING, time.monotonic()
                try:
                    run(stop)
                    break
                except Exception as exc:  # noqa: BLE001 - a dead service is restarted, and visible meanwhile
                    svc.crashes += 1
                    svc.state = RESTARTING
                    log.error("service.crashed", service=svc.name, error_type=type(exc).__name__, crashes=svc.crashes)
                    delay = self.backoff.next(delay, time.monotonic() - started)
                    if stop.wait(delay):
                        break
                    log.warning("service.restarted", service=svc.name, crashes=svc.crashes, after_s=delay)
                    metrics.service_restarted(svc.name)
            svc.state = STOPPED
        finally:
            if svc.state != STOPPED:  # a BaseException (SystemExit, KeyboardInterrupt) ended the thread
                svc.state = FAILED

    def states(self) -> dict[str, str]:
        """Each service's state; safe to call from another thread (the ops API) while services are spawned."""
        return {svc.name: svc.state for svc in self._all()}

    @property
    def crashes(self) -> int:
        return sum(svc.crashes for svc in self._all())

    def _all(self) -> list[_Service]:
        # copied by one C call, which holds the GIL: spawn() in another thread may add to the dict meanwhile
        return list(self._services.values())

    def join(self, deadline: float, *, adapters: bool | None = None) -> bool:
        """Wait (until the monotonic time ``deadline``) for the services (``adapters``: only those, or only
        the others); True when all of them ended."""
        picked = [s for s in self._all() if adapters is None or s.adapter == adapters]
        for svc in picked:
            if svc.thread is not None:
                svc.thread.join(max(0.1, deadline - time.monotonic()))
        return not any(s.thread is not None and s.thread.is_alive() for s in picked)
