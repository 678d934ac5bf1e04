"""The runtime: one object holding the bus, the store and the config, built in the CLI and passed down.

Services start as steps and stop in reverse: stop intake (adapters), drain and ack (workers), close
(bus, store). No global state. Each service runs supervised (:mod:`engine.supervise`): one that crashes
is restarted with backoff, :meth:`Runtime.health` shows it meanwhile, and the stop is not clean.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog

from engine import heap, metrics, registry
from engine import logging as elog
from engine.bus import Bus
from engine.config import BusConfig, EmbeddedBusConfig, EngineConfig, parse_config
from engine.procs import WorkerProcesses
from engine.store import Store
from engine.supervise import Health, Supervisor
from engine.worker import Mapper, Worker

if TYPE_CHECKING:
    from adapters.base import Adapter, ProcessedKeys

log = structlog.get_logger(__name__)


def make_bus(cfg: BusConfig) -> Bus:
    if isinstance(cfg, EmbeddedBusConfig):
        from engine.bus.embedded import EmbeddedBus

        return EmbeddedBus(cfg.path, lease_seconds=cfg.lease_seconds)
    from engine.bus.rabbit import RabbitBus

    return RabbitBus(cfg)


@dataclass
class Runtime:
    config: EngineConfig
    bus: Bus
    store: Store
    workers: list[Worker] = field(default_factory=list)
    supervisor: Supervisor = field(default_factory=Supervisor)
    #: processed-message keys for the adapters' duplicate detection: the store
    keys: ProcessedKeys = field(init=False, repr=False)
    #: set to stop the adapters (intake), then the workers (see :meth:`shutdown`)
    _intake_stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _work_stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _procs: WorkerProcesses | None = field(default=None, init=False, repr=False)
    _ops: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    @classmethod
    def build(cls, config: EngineConfig, *, declare: bool = True) -> Runtime:
        store = Store(config.store.url_with_secret(), pool_size=config.store.pool_size)
        bus = make_bus(config.bus)
        if declare:
            bus.declare()
        return cls(config=config, bus=bus, store=store)

    def __post_init__(self) -> None:
        self.keys = self.store

    def mapping_options(self, adapter: str) -> dict[str, Any]:
        settings = self.config.adapters.get(adapter)
        return settings.mapping_options() if settings is not None else {}

    def mapper(self) -> Mapper:
        return Mapper(self.mapping_options, max_attachment_bytes=self.config.store.max_attachment_bytes)

    def build_adapter(self, name: str) -> Adapter:
        settings = self.config.adapters[name]
        return registry.adapter(settings.type).build(name, settings, self)

    def build_worker(self, i: int = 0) -> Worker:
        w = self.config.workers
        return Worker(
            self.bus,
            self.store,
            self.mapper(),
            batch_size=w.batch_size,
            batch_wait=w.batch_wait_ms / 1000,
            prefetch=w.prefetch,
            delivery_limit=self.config.bus.delivery_limit,
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
            self._procs = WorkerProcesses(self.config, spawn, serve_worker_process)
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
        procs = self._procs
        return Health(services={**self.supervisor.states(), **(procs.states() if procs is not None else {})})

    @property
    def crashes(self) -> int:
        """How many times a service (thread or worker process) crashed since the start."""
        procs = self._procs
        return self.supervisor.crashes + (procs.crashes if procs is not None else 0)

    def _mapping_modules(self) -> list[str]:
        names = {a.mapping for a in self.config.adapters.values()}
        return [registry.mapping(n).module for n in sorted(names) if n]

    def _spawn(
        self, name: str, fn: Callable[[threading.Event], object], stop: threading.Event, adapter: bool = False
    ) -> None:
        self.supervisor.spawn(name, fn, stop, adapter=adapter)

    def shutdown(self, deadline: float = 30.0) -> bool:
        """Stop intake, let workers drain, then close. True when every service ended in time and none
        crashed while the engine ran."""
        end = time.monotonic() + deadline
        self._intake_stop.set()
        self.supervisor.join(end, adapters=True)
        self._work_stop.set()
        procs = self._procs
        procs_ok = procs.stop(max(1.0, end - time.monotonic())) if procs is not None else True
        ended = self.supervisor.join(end)
        ok = procs_ok and ended and self.crashes == 0
        ops = self._ops
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


def serve_worker_process(config_data: dict[str, Any], index: int) -> bool:
    """A worker process's life (:mod:`engine.procs` runs it in the child): build its runtime from the same
    config, run its workers until SIGTERM, drain; True when clean."""
    stop = threading.Event()
    install_signal_handlers(stop)
    cfg = parse_config(config_data, f"<worker process {index}>")
    elog.configure(cfg.log.level, cfg.log.format)
    rt = Runtime.build(cfg, declare=False)
    rt.start(adapters=[], extra_processes=False)
    log.info("worker_process.started", index=index, pid=os.getpid())
    stop.wait()
    ok = rt.shutdown(30)
    log.info("worker_process.stopped", index=index, clean=ok)
    return ok


def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("engine.signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
