"""The engine's own counters, kept in process (prometheus_client): what ``/metrics`` serves at no database cost.

Adapters, workers and the MLLP listener call the functions below where the thing happens (one line each):
:func:`published` after a broker confirm, :func:`batch_committed` and :func:`dead_lettered` at a worker's
commit, :func:`mllp_connection` / :func:`mllp_ack` in the listener, :func:`service_restarted` in the
supervisor. Each is a cheap in-process update.

An engine with worker processes counts across all of them: :func:`start_run` (called by the engine's
process before it spawns any) makes one directory per engine run (``enjournal-metrics-<pid>`` in the
temporary directory, emptied at start, stale ones of ended runs removed), sets ``PROMETHEUS_MULTIPROC_DIR``
so the spawned worker processes inherit it, and switches this process to prometheus_client's
multiprocess mode too; :func:`render` then merges every process's file. A process without worker
processes keeps its counters in memory. Label values are adapter names, reason codes and ACK codes:
never message content.

prometheus_client's metrics are process-wide by design (the multiprocess files are per process id);
this module holds the one set of them, rebuilt when :func:`start_run` changes the mode. The labelled
child of each (metric, labels) is looked up once and kept (:class:`_Labelled`): ``labels()`` takes a
lock and a dictionary look-up on every call, and in multiprocess mode each increment writes the mmap
anyway. Worker processes write counters only; the one live gauge (open MLLP connections) belongs to the
intake process, so a worker process that ends needs no clean-up: its counts still count.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

ENV = "PROMETHEUS_MULTIPROC_DIR"
DIR_PREFIX = "enjournal-metrics-"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_COMMIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
disable_created_metrics()  # no ``*_created`` series: the same text in memory and in multiprocess mode


class _Labelled:
    """A labelled metric's children by label values, each looked up in the metric once."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:  # two threads may both get here: labels() hands both the same child
            child = self._children[values] = self.metric.labels(*values)
        return child


class EngineMetrics:
    """The engine's metric objects, registered in one registry; labelled ones as :class:`_Labelled`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.published = _Labelled(
            Counter(
                "enjournal_envelopes_published",
                "Envelopes an adapter received and published (the broker confirmed them)",
                ["adapter"],
                registry=r,
            )
        )
        self.committed = _Labelled(
            Counter(
                "enjournal_envelopes_committed", "Envelopes a worker committed to the journal", ["adapter"], registry=r
            )
        )
        self.dead = _Labelled(
            Counter(
                "enjournal_dead_letters",
                "Envelopes dead-lettered, by adapter and reason code",
                ["adapter", "code"],
                registry=r,
            )
        )
        self.commit_seconds = Histogram(
            "enjournal_batch_commit_seconds", "Duration of a worker's batch commit", buckets=_COMMIT_BUCKETS, registry=r
        )
        self.restarts = _Labelled(
            Counter(
                "enjournal_service_restarts", "Restarts of a crashed service or worker process", ["service"], registry=r
            )
        )
        self.mllp_open = _Labelled(
            Gauge(
                "enjournal_mllp_connections",
                "Open MLLP connections",
                ["adapter"],
                registry=r,
                multiprocess_mode="livesum",
            )
        )
        self.mllp_acks = _Labelled(
            Counter("enjournal_mllp_acks", "ACKs sent by an MLLP listener, by code", ["adapter", "code"], registry=r)
        )
        self.last_received = _Labelled(
            Gauge(
                "enjournal_last_received_timestamp_seconds",
                "Unix time an adapter last published an envelope",
                ["adapter"],
                registry=r,
                multiprocess_mode="max",
            )
        )


class _State:
    """The metric set this process writes to."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.metrics: EngineMetrics | None = None


_state = _State()


def current() -> EngineMetrics:
    """This process's metric set (built on first use)."""
    m = _state.metrics
    if m is None:
        with _state.lock:
            if _state.metrics is None:
                _state.metrics = EngineMetrics()
            m = _state.metrics
    return m


def multiprocess_dir() -> Path | None:
    """The run directory this process writes its counters to, or None (counters in memory)."""
    d = os.environ.get(ENV)
    return Path(d) if d and values.ValueClass is not values.MutexValue else None


def start_run(worker_processes: bool) -> Path | None:
    """Called by an engine process when it starts its services, before it spawns worker processes.

    A worker process of a run (spawned by ``multiprocessing``, the run directory inherited) keeps writing
    to that directory. An engine process with worker processes makes a fresh run directory of its own
    (so does one that found the variable set, whoever set it: it never adds to another run's counts);
    without worker processes, counters stay in memory."""
    with _state.lock:
        found = os.environ.get(ENV)
        if found and multiprocessing.parent_process() is not None:
            _use()
            return Path(found)
        if not worker_processes and not found:
            return None
        directory = Path(tempfile.gettempdir()) / f"{DIR_PREFIX}{os.getpid()}"
        _remove_stale(directory.parent)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(mode=0o700, parents=True)
        os.environ[ENV] = str(directory)
        _use(fresh=True)
        return directory


def _use(*, fresh: bool = False) -> None:
    """Multiprocess mode (under ``_state.lock``): a new value class and metric set when the mode or the
    directory changed."""
    if fresh or values.ValueClass is values.MutexValue:
        values.close_all_multiprocess_files()
        values.ValueClass = values.MultiProcessValue()
        _state.metrics = None


def _remove_stale(parent: Path) -> None:
    """Run directories of engine processes that no longer run."""
    for d in parent.glob(f"{DIR_PREFIX}*"):
        pid = d.name[len(DIR_PREFIX) :]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- what the rest of the engine calls ---------------------------------------------------------------
def published(envelopes: Iterable[Any]) -> None:
    """Envelopes an adapter published and the broker confirmed (counted per ``envelope.adapter``)."""
    by_adapter = Tally(e.adapter for e in envelopes)
    if not by_adapter:
        return
    m, now = current(), time.time()
    for adapter, n in by_adapter.items():
        m.published(adapter).inc(n)
        m.last_received(adapter).set(now)


def batch_committed(mapped: Mapping[str, int], seconds: float) -> None:
    """A worker committed a batch: the envelopes it journaled (not dead-lettered) per adapter, and the
    commit's duration."""
    m = current()
    for adapter, n in mapped.items():
        if n > 0:
            m.committed(adapter).inc(n)
    m.commit_seconds.observe(seconds)


def dead_lettered(adapter: str, code: str | None) -> None:
    current().dead(adapter, code or "UNKNOWN").inc()


def service_restarted(service: str) -> None:
    current().restarts(service).inc()


def mllp_connection(adapter: str, delta: int) -> None:
    """+1 when an MLLP connection opens, -1 when it closes."""
    current().mllp_open(adapter).inc(delta)


def mllp_ack(adapter: str, code: str) -> None:
    current().mllp_acks(adapter, code).inc()


_TOTALS = {
    "enjournal_envelopes_published_total": "published",
    "enjournal_envelopes_committed_total": "committed",
    "enjournal_dead_letters_total": "dead_letters",
}


def _own() -> Any:
    d = multiprocess_dir()
    return current().registry if d is None else MultiProcessCollector(None, path=str(d))


def totals() -> dict[str, dict[str, int]]:
    """Envelopes published, committed and dead-lettered per adapter since this engine run started."""
    out: dict[str, dict[str, int]] = {name: {} for name in _TOTALS.values()}
    for family in _own().collect():
        for sample in family.samples:
            name = _TOTALS.get(sample.name)
            if name is not None:
                adapter = sample.labels.get("adapter", "")
                out[name][adapter] = out[name].get(adapter, 0) + int(sample.value)
    return out


class _Chain:
    """Collectors read one after the other (a registry of the moment, without registering anything)."""

    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterable[Any]:
        for c in self.collectors:
            yield from c.collect()


def render(*extra: Any) -> bytes:
    """Prometheus text of every process of this engine run, plus ``extra`` collectors (broker figures)."""
    return generate_latest(_Chain(_own(), *extra))
