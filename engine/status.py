"""What ``/health``, ``/status``, ``/metrics`` and ``enjournal status`` report, and what each costs.

* **Free**: the engine's in-process counters (:mod:`engine.metrics`) and each service's state
  (``runtime.health()``).
* **Cached**: the broker's figures (queue depth, consumers) for ``broker_ttl`` seconds and whether the bus
  and the store answer for ``reach_ttl`` seconds. Concurrent callers share one computation, so any number
  of parallel scrapes costs one broker round trip per ``broker_ttl``.
* **On request only**: counts from the database (:meth:`engine.store.Store.counts`). ``enjournal status``
  shows the light ones (open dead letters per adapter, identity conflicts: small tables);
  ``enjournal status --counts`` and ``/status?counts=1`` (at most once per ``counts_ttl``) the full ones,
  which add envelopes received per adapter and records per kind (scans of the journal's largest tables).

A figure that cannot be had (the broker or the database down, a client library's own error) is answered
as ``{"error": <code or error type>}``, never raised into the caller (an HTTP handler).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from prometheus_client.core import GaugeMetricFamily

from engine import metrics
from engine.errors import EnjournalError

if TYPE_CHECKING:
    from engine.bus import Bus
    from engine.store import Store
    from engine.supervise import Health

T = TypeVar("T")


class Monitored(Protocol):
    """What the figures are read from: a running engine (:class:`engine.runtime.Runtime`)."""

    @property
    def bus(self) -> Bus: ...
    @property
    def store(self) -> Store: ...
    def health(self) -> Health: ...


class Cached(Generic[T]):
    """A value computed at most once per ``ttl`` seconds; callers arriving meanwhile wait for that one
    computation instead of starting their own (``fn`` should not raise: return the error as data)."""

    def __init__(self, fn: Callable[[], T], ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._fn, self._ttl, self._clock = fn, ttl, clock
        self._lock = threading.Lock()
        self._at: float | None = None
        self._value: T | None = None

    def get(self) -> T:
        with self._lock:
            if self._at is None or self._clock() - self._at >= self._ttl:
                self._value = self._fn()
                self._at = self._clock()
            return self._value  # type: ignore[return-value]


def error_code(exc: Exception) -> str:
    """What to answer for a figure that failed: the engine's code, else the error's type (never its text)."""
    return exc.code if isinstance(exc, EnjournalError) else type(exc).__name__


def _figures(fn: Callable[[], Any]) -> dict[str, Any]:
    try:
        return dict(fn())
    except Exception as exc:  # noqa: BLE001 - a client library's own error (SQLAlchemy, sqlite3) too
        return {"error": error_code(exc)}


def broker_figures(bus: Bus) -> dict[str, Any]:
    """Queue depths (and consumers of the work queue, where the bus knows them), or the error."""
    return _figures(bus.depth)


def store_counts(store: Store, heavy: bool) -> dict[str, Any]:
    """The store's counts (:meth:`engine.store.Store.counts`), or the error."""
    return _figures(lambda: store.counts(heavy=heavy))


def reachability(runtime: Monitored) -> dict[str, str]:
    """``ok`` or the error code, for the bus and the store."""
    out: dict[str, str] = {}
    for name, check in (("bus", runtime.bus.check), ("store", runtime.store.check)):
        try:
            check()
            out[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - a client library's own error is a down component too
            out[name] = error_code(exc)
    return out


class Monitor:
    """The cached figures of one running engine, for the ops API."""

    def __init__(
        self, runtime: Monitored, *, broker_ttl: float = 5.0, reach_ttl: float = 2.0, counts_ttl: float = 10.0
    ) -> None:
        self.runtime = runtime
        self.broker = Cached(lambda: broker_figures(runtime.bus), broker_ttl)
        self.reach = Cached(lambda: reachability(runtime), reach_ttl)
        self.counts = Cached(lambda: store_counts(runtime.store, heavy=True), counts_ttl)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(ready, what to answer): ready when every service runs and the bus and the store answer."""
        services = self.runtime.health()
        reach = self.reach.get()
        down = [*services.down, *sorted(k for k, v in reach.items() if v != "ok")]
        body: dict[str, Any] = {"status": "ok" if not down else "down", "services": dict(services.services), **reach}
        if down:
            body["down"] = down
        return not down, body

    def status(self, with_counts: bool = False) -> dict[str, Any]:
        ready, health = self.health()
        out: dict[str, Any] = {
            "ready": ready,
            "health": health,
            "queue": self.broker.get(),
            "since_start": metrics.totals(),
        }
        if with_counts:
            out["counts"] = self.counts.get()
        return out

    def collector(self) -> _Figures:
        return _Figures(self)


class _Figures:
    """The cached figures as Prometheus gauges, for ``/metrics``."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queue = self.monitor.broker.get()
        depth = GaugeMetricFamily("enjournal_queue_depth", "Messages in a queue (cached)", labels=["queue"])
        for name in ("work", "dead"):
            if isinstance(queue.get(name), int):
                depth.add_metric([name], queue[name])
        yield depth
        if isinstance(queue.get("consumers"), int):
            yield GaugeMetricFamily(
                "enjournal_queue_consumers", "Consumers of the work queue (cached)", value=queue["consumers"]
            )
        ready, health = self.monitor.health()
        up = GaugeMetricFamily("enjournal_up", "1 when the component answers (cached)", labels=["component"])
        for name in ("bus", "store"):
            up.add_metric([name], 1.0 if health.get(name) == "ok" else 0.0)
        yield up
        services = GaugeMetricFamily("enjournal_service_running", "1 while the service runs", labels=["service"])
        for name, state in sorted(health["services"].items()):
            services.add_metric([name], 1.0 if state == "running" else 0.0)
        yield services
        yield GaugeMetricFamily(
            "enjournal_ready", "1 when every service runs and the bus and store answer", value=1.0 if ready else 0.0
        )
