"""Extra worker processes: mapping is CPU-bound Python, so one process per core is how a worker scales.

``workers.processes: N`` makes ``enjournal run`` start N-1 worker processes beside its own (spawned,
each building its own runtime from the same config, workers only, no adapters), restart one that
dies, and stop them with SIGTERM (they drain) when the engine stops.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from typing import Any

import structlog

log = structlog.get_logger(__name__)


def _worker_main(config_data: dict[str, Any], index: int) -> None:  # runs in the child
    from engine import logging as elog
    from engine.config import parse_config
    from engine.runtime import Runtime, install_signal_handlers

    stop = threading.Event()
    install_signal_handlers(stop)
    cfg = parse_config(config_data, f"<worker process {index}>")
    elog.configure(cfg.log.level, cfg.log.format)
    rt = Runtime.build(cfg, declare=False)
    rt.start(adapters=[], extra_processes=False)
    log.info("worker_process.started", index=index, pid=os.getpid())
    stop.wait()
    rt.shutdown(30)


class WorkerProcesses:
    """Supervises the extra worker processes of one engine."""

    def __init__(self, config: Any, count: int) -> None:
        self._data = config.model_dump(mode="json")
        self._count = count
        self._ctx = mp.get_context("spawn")
        self._procs: list[Any] = []
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        self._procs = [self._spawn(i) for i in range(self._count)]
        self._supervisor = threading.Thread(target=self._supervise, name="worker-processes", daemon=True)
        self._supervisor.start()

    def _spawn(self, index: int) -> Any:
        p = self._ctx.Process(target=_worker_main, args=(self._data, index), name=f"enjournal-worker-{index}",
                              daemon=False)
        p.start()
        return p

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            for i, p in enumerate(self._procs):
                if not p.is_alive() and not self._stopping.is_set():
                    log.warning("worker_process.restarting", index=i, exitcode=p.exitcode)
                    self._procs[i] = self._spawn(i)

    def stop(self, deadline: float) -> bool:
        self._stopping.set()
        for p in self._procs:
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGTERM)
        ok = True
        for p in self._procs:
            p.join(deadline)
            if p.is_alive():
                ok = False
                p.kill()
                p.join(5)
        return ok
