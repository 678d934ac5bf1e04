"""engine.metrics and engine.status without services: the cache shares one computation, the run directory
is made fresh per engine run and inherited by worker processes, the text parses."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from engine import metrics
from engine.status import Cached
from tests.conftest import REPO
from tests.helpers import envelope


def test_cached_value_is_computed_once_per_period_for_concurrent_callers() -> None:
    calls: list[int] = []
    now = [0.0]

    def slow() -> int:
        calls.append(1)
        time.sleep(0.05)
        return len(calls)

    cache = Cached(slow, ttl=5.0, clock=lambda: now[0])
    got: list[int] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get())) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [1] * 20 and len(calls) == 1
    now[0] = 4.9
    assert cache.get() == 1
    now[0] = 5.0
    assert cache.get() == 2


def test_counters_render_as_valid_prometheus_text() -> None:
    metrics.published([envelope("m1", adapter="unit"), envelope("m2", adapter="unit")])
    metrics.dead_lettered("unit", "SOME_CODE")
    metrics.mllp_ack("unit", "AA")
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    assert {
        "enjournal_envelopes_published",
        "enjournal_dead_letters",
        "enjournal_batch_commit_seconds",
        "enjournal_mllp_acks",
        "enjournal_mllp_connections",
    } <= set(families)
    totals = metrics.totals()
    assert totals["published"]["unit"] >= 2 and totals["dead_letters"]["unit"] >= 1


def test_a_batch_counts_what_it_journaled_per_adapter_and_labelled_children_are_kept() -> None:
    from engine.outcome import BatchStats, Outcome
    from engine.worker import _mapped

    mapped = [Outcome(envelope(f"ok{i}", adapter="batch-a")) for i in range(3)]
    dead = Outcome(envelope("d", adapter="batch-b"), reason_code="X", reason="X")
    rejected = Outcome(mapped[0].envelope, reason_code="STORE_REJECTED", reason="STORE_REJECTED: TypeError")
    before = metrics.totals()["committed"]
    metrics.batch_committed(_mapped([*mapped, dead], BatchStats(envelopes=4, rejected=[rejected])), 0.01)
    after = metrics.totals()["committed"]
    assert after.get("batch-a", 0) - before.get("batch-a", 0) == 2 and "batch-b" not in after
    m = metrics.current()
    assert m.dead("batch-b", "X") is m.dead("batch-b", "X") and m.published("batch-a") is m.published("batch-a")


_RUN = """
import multiprocessing as mp, os, sys
from engine import metrics

def child(q):
    metrics.start_run(worker_processes=False)
    metrics.dead_lettered("child", "C")
    q.put(os.environ.get(metrics.ENV))

if __name__ == "__main__":
    os.environ[metrics.ENV] = sys.argv[1]  # left over from elsewhere: never added to
    d = metrics.start_run(worker_processes=True)
    assert d is not None and str(d) != sys.argv[1] and d.name == f"enjournal-metrics-{os.getpid()}", d
    metrics.dead_lettered("parent", "P")
    q = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=child, args=(q,))
    p.start(); inherited = q.get(timeout=60); p.join(60)
    assert inherited == str(d), inherited
    t = metrics.totals()["dead_letters"]
    assert t == {"parent": 1, "child": 1}, t
    again = metrics.start_run(worker_processes=True)  # a new run in the same process starts from zero
    assert again == d and metrics.totals()["dead_letters"] == {}, metrics.totals()
    print("ok")
"""


def test_run_directory_is_fresh_per_run_and_shared_with_worker_processes(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(_RUN)
    r = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "foreign")],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)},
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
    assert not (tmp_path / "foreign").exists()
