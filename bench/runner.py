"""The engine process of a benchmark path: ``python -m bench.runner CONFIG STATS_JSON [all|adapters|workers]``.

It does what ``enjournal run -c CONFIG`` does (``Runtime.build`` + ``Runtime.start``: adapters and
workers as threads of one process, SIGTERM drains and stops) and, after the shutdown, writes the
workers' :class:`engine.worker.WorkerStats` (summed) and the process's peak RSS (``VmHWM``, see
:mod:`bench.rss`) to ``STATS_JSON``. A file ``STATS_JSON.ready`` appears once adapters and workers run.
One process per path, so each path's peak RSS is its own. ``adapters`` / ``workers`` run only that half
(``enjournal run --no-workers`` / ``--adapter`` none), to split intake and workers over two processes.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from bench.rss import self_peak_kb
from engine import logging as elog
from engine.config import load_config
from engine.runtime import Runtime, install_signal_handlers


def _stats(rt: Runtime) -> dict[str, object]:
    stages: dict[str, float] = {}
    for w in rt.workers:
        for k, v in w.stats.stage_seconds.items():
            stages[k] = stages.get(k, 0.0) + v
    return {
        "envelopes": sum(w.stats.envelopes for w in rt.workers),
        "batches": sum(w.stats.batches for w in rt.workers),
        "dead": sum(w.stats.dead for w in rt.workers),
        "versions_new": sum(w.stats.versions_new for w in rt.workers),
        "stage_seconds": stages,
        "max_rss_kb": self_peak_kb(),
    }


def main(config: str, out: str, mode: str = "all") -> int:
    cfg = load_config(config)
    elog.configure(cfg.log.level, cfg.log.format)
    rt = Runtime.build(cfg)
    stop = threading.Event()
    install_signal_handlers(stop)
    rt.start(adapters=[] if mode == "workers" else None, with_workers=mode != "adapters")
    Path(out + ".ready").write_text("ready\n", encoding="utf-8")
    stop.wait()
    ok = rt.shutdown(30.0)
    Path(out).write_text(json.dumps({**_stats(rt), "clean": ok}), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
