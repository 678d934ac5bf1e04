"""Extra worker processes: mapping is CPU-bound Python, so one process per core is how a worker scales.

``workers.processes: N`` makes ``enjournal run`` start N-1 worker processes beside its own (spawned,
each building its own runtime from the same config, workers only, no adapters: the ``serve`` function the
runtime hands over, :func:`engine.runtime.serve_worker_process`), restart one that
dies with the same exponential backoff as a thread (:class:`engine.supervise.Backoff`), and stop them
with SIGTERM (they drain) when the engine stops. A process that exits non-zero on that SIGTERM (one
of its own services had crashed, or it did not drain in time) makes the stop unclean.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

import structlog

from engine import metrics
from engine.supervise import RESTARTING, RUNNING, STOPPED, Backoff

if TYPE_CHECKING:
    from engine.config import EngineConfig

log = structlog.get_logger(__name__)


#: a worker process's life, run in the child: (the config as JSON-able data, its index) -> True when clean
Serve = Callable[[dict[str, Any], int], bool]


def child_main(serve: Serve, config_data: dict[str, Any], index: int) -> None:  # runs in the child
    """Run ``serve`` and exit with its outcome: 0 clean, 1 not clean or crashed."""
    try:
        ok = serve(config_data, index)
    except Exception as exc:  # noqa: BLE001 - multiprocessing would print a traceback, which may quote values
        log.error("worker_process.crashed", index=index, error_type=type(exc).__name__)
        sys.exit(1)
    sys.exit(0 if ok else 1)


def exit_kind(exitcode: int | None) -> str:
    """What ended a process, as an error type: ``SIGKILL``, ``exit_1``."""
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal_{-exitcode}"
    return f"exit_{exitcode}"


@dataclass
class _Slot:
    """One worker process and its supervision state."""

    proc: BaseProcess
    started: float
    state: str = RUNNING
    delay: float = 0.0
    restart_at: float = 0.0
    crashes: int = 0


class WorkerProcesses:
    """Supervises the extra worker processes of one engine."""

    def __init__(
        self, config: EngineConfig, count: int, serve: Serve, *, backoff: Backoff | None = None, tick: float = 0.1
    ) -> None:
        self._data = config.model_dump(mode="json")
        self._count = count
        self._serve = serve
        self._ctx = mp.get_context("spawn")
        self._slots: list[_Slot] = []
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._backoff = backoff or Backoff()
        self._tick = tick

    def start(self) -> None:
        self._slots = [_Slot(self._spawn(i), time.monotonic()) for i in range(self._count)]
        self._supervisor = threading.Thread(target=self._supervise, name="worker-processes", daemon=True)
        self._supervisor.start()

    def _spawn(self, index: int) -> BaseProcess:
        p = self._ctx.Process(
            target=child_main, args=(self._serve, self._data, index), name=f"enjournal-worker-{index}", daemon=False
        )
        p.start()
        return p

    def _supervise(self) -> None:
        while not self._stopping.wait(self._tick):
            for i, slot in enumerate(self._slots):
                self._check(i, slot, time.monotonic())

    def _check(self, index: int, slot: _Slot, now: float) -> None:
        if slot.state == RUNNING and not slot.proc.is_alive() and not self._stopping.is_set():
            slot.crashes += 1
            slot.delay = self._backoff.next(slot.delay, now - slot.started)
            slot.state, slot.restart_at = RESTARTING, now + slot.delay
            log.error(
                "service.crashed", service=_name(index), error_type=exit_kind(slot.proc.exitcode), crashes=slot.crashes
            )
        elif slot.state == RESTARTING and now >= slot.restart_at and not self._stopping.is_set():
            slot.proc, slot.started, slot.state = self._spawn(index), now, RUNNING
            log.warning("service.restarted", service=_name(index), crashes=slot.crashes, after_s=slot.delay)
            metrics.service_restarted(_name(index))

    def states(self) -> dict[str, str]:
        return {_name(i): slot.state for i, slot in enumerate(self._slots)}

    @property
    def crashes(self) -> int:
        return sum(slot.crashes for slot in self._slots)

    def stop(self, deadline: float) -> bool:
        """SIGTERM every process and wait up to ``deadline`` seconds; True when all of them exited 0."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        for slot in self._slots:
            if slot.proc.is_alive() and slot.proc.pid:
                os.kill(slot.proc.pid, signal.SIGTERM)
        ok, end = True, time.monotonic() + deadline
        for slot in self._slots:
            slot.proc.join(max(0.1, end - time.monotonic()))
            if slot.proc.is_alive():
                ok = False
                slot.proc.kill()
                slot.proc.join(5)
            elif slot.state == RUNNING and slot.proc.exitcode != 0:
                ok = False
            slot.state = STOPPED
        return ok


def _name(index: int) -> str:
    return f"worker-process-{index}"
