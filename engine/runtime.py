"""The runtime: one object holding the bus, the store and the config, built in the CLI and passed down.

Services start as steps and stop in reverse: stop intake (adapters), drain and ack (workers), close
(bus, store). No global state. Each service runs supervised (:mod:`engine.supervise`): one that crashes
is restarted with backoff, :meth:`Runtime.health` shows it meanwhile, and the stop is not clean.
"""

from __future__ import annotations

import importlib
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

import structlog

from engine import heap, metrics
from engine.bus import Bus
from engine.config import ADAPTER_KINDS, ENTRY_POINT_GROUP, EmbeddedBusConfig
from engine.store import Store
from engine.supervise import Health, Supervisor
from engine.worker import Mapper, Worker

log = structlog.get_logger(__name__)


def make_bus(cfg: Any) -> Bus:
    if isinstance(cfg, EmbeddedBusConfig):
        from engine.bus.embedded import EmbeddedBus

        return EmbeddedBus(cfg.path, lease_seconds=cfg.lease_seconds)
    from engine.bus.rabbit import RabbitBus

    return RabbitBus(cfg)


def adapter_module(kind: str) -> Any:
    target = ADAPTER_KINDS.get(kind)
    if target is not None:
        return importlib.import_module(target)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP, name=kind):
        return importlib.import_module(ep.module)
    raise KeyError(kind)


@dataclass
class Runtime:
    config: Any
    bus: Bus
    store: Store
    workers: list[Worker] = field(default_factory=list)
    supervisor: Supervisor = field(default_factory=Supervisor)

    @classmethod
    def build(cls, config: Any, *, declare: bool = True) -> Runtime:
        store = Store(config.store.url_with_secret(), pool_size=config.store.pool_size)
        bus = make_bus(config.bus)
        if declare:
            bus.declare()
        return cls(config=config, bus=bus, store=store)

    @property
    def keys(self) -> Store:
        """Processed-message keys for duplicate detection (adapters.base.ProcessedKeys)."""
        return self.store

    def mapping_options(self, adapter: str) -> dict[str, Any]:
        settings = self.config.adapters.get(adapter)
        fn = getattr(settings, "mapping_options", None)
        return fn() if callable(fn) else {}

    def mapper(self) -> Mapper:
        return Mapper(self.mapping_options)

    def build_adapter(self, name: str) -> Any:
        settings = self.config.adapters[name]
        return adapter_module(settings.type).build(name, settings, self)

    def build_worker(self, i: int = 0) -> Worker:
        w = self.config.workers
        limit = getattr(self.config.bus, "delivery_limit", 5)
        return Worker(
            self.bus,
            self.store,
            self.mapper(),
            batch_size=w.batch_size,
            batch_wait=w.batch_wait_ms / 1000,
            prefetch=w.prefetch,
            delivery_limit=limit,
            name=f"worker-{i}",
        )

    def start(self, adapters: list[str] | None = None, with_workers: bool = True, extra_processes: bool = True) -> None:
        """Start workers first (so intake is drained), then adapters, each in its thread, then the ops API."""
        intake, stop = threading.Event(), threading.Event()
        self._intake_stop, self._work_stop = intake, stop
        w = self.config.workers
        spawn = (w.processes - 1 if w.in_intake_process else w.processes) if with_workers and extra_processes else 0
        metrics.start_run(worker_processes=spawn > 0)  # before spawning: they inherit the run's directory
        if spawn > 0:
            from engine.procs import WorkerProcesses

            self._procs = WorkerProcesses(self.config, spawn)
            self._procs.start()
        here = with_workers and (w.in_intake_process or not extra_processes)
        workers = [self.build_worker(i) for i in range(w.count)] if here else []
        built = [
            (name, self.build_adapter(name))
            for name in (adapters if adapters is not None else list(self.config.adapters))
        ]
        heap.freeze(self._mapping_modules())  # long-lived from here on: keep it out of the GC's scans
        for i, worker in enumerate(workers):
            self.workers.append(worker)
            self._spawn(f"worker-{i}", worker.run, stop)
        for name, adapter in built:
            self._spawn(f"adapter-{name}", adapter.run, intake, adapter=True)
        # last: /health must never answer ready before every service of this process exists
        if self.config.ops.port is not None and extra_processes:  # the engine's process, not a worker process
            from engine.ops import serve

            self._ops = serve(self, self.config.ops.host, self.config.ops.port)

    def health(self) -> Health:
        """Each service's state, worker processes included (see :class:`engine.supervise.Health`); no I/O."""
        procs = getattr(self, "_procs", None)
        return Health(services={**self.supervisor.states(), **(procs.states() if procs is not None else {})})

    @property
    def crashes(self) -> int:
        """How many times a service (thread or worker process) crashed since the start."""
        procs = getattr(self, "_procs", None)
        return self.supervisor.crashes + (procs.crashes if procs is not None else 0)

    def _mapping_modules(self) -> list[str]:
        from mappings.registry import BUILTIN

        names = {getattr(a, "mapping", "") for a in self.config.adapters.values()}
        return [BUILTIN.get(n, n).partition(":")[0] for n in names if n]

    def _spawn(self, name: str, fn: Any, stop: threading.Event, adapter: bool = False) -> None:
        self.supervisor.spawn(name, fn, stop, adapter=adapter)

    def shutdown(self, deadline: float = 30.0) -> bool:
        """Stop intake, let workers drain, then close. True when every service ended in time and none
        crashed while the engine ran."""
        import time

        end = time.monotonic() + deadline
        getattr(self, "_intake_stop", threading.Event()).set()
        self.supervisor.join(end, adapters=True)
        getattr(self, "_work_stop", threading.Event()).set()
        procs = getattr(self, "_procs", None)
        procs_ok = procs.stop(max(1.0, end - time.monotonic())) if procs is not None else True
        ended = self.supervisor.join(end)
        ok = procs_ok and ended and self.crashes == 0
        ops = getattr(self, "_ops", None)
        if ops is not None:
            ops.shutdown()
            ops.server_close()
        self.close()
        return ok

    def close(self) -> None:
        try:
            self.bus.close()
        finally:
            self.store.close()


def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame: Any) -> None:
        log.info("engine.signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
