"""CPU time spent over a path by the engine's processes, the broker and the database (Linux ``/proc``).

On a 2-core machine the engine, RabbitMQ and PostgreSQL share the CPUs, so a path's rate is set by
the CPU all of them spend per message: this says where it goes. ``engine`` is the engine processes
and their children (worker processes), ``broker`` every ``beam.smp``, ``database`` every ``postgres``
process (the broker and database the bench uses run on this machine). A process that exits between
the two readings is not counted, so the bench reads the second before it stops the engines.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

Snapshot = dict[int, tuple[str, int, float]]  # pid -> (command, parent pid, CPU seconds)
_GROUPS = {"beam.smp": "broker", "postgres": "database"}


def snapshot() -> Snapshot:
    """CPU seconds (user + system) of every process now; empty where there is no ``/proc``."""
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return {}
    hz = os.sysconf("SC_CLK_TCK")
    out: Snapshot = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        close = stat.rfind(")")
        fields = stat[close + 2 :].split()
        out[pid] = (stat[stat.find("(") + 1 : close], int(fields[1]), (int(fields[11]) + int(fields[12])) / hz)
    return out


def spent(
    before: Snapshot, after: Snapshot, engine_pids: Iterable[int], intake_pid: int | None = None
) -> dict[str, float]:
    """CPU seconds per group between two snapshots (processes born in between count from zero).
    With ``intake_pid`` (the adapters' process of a split engine) its share of ``engine`` is also
    given as ``intake``."""
    engine = set(engine_pids)
    engine |= {pid for pid, (_c, ppid, _s) in after.items() if ppid in engine}
    out = {"engine": 0.0, "broker": 0.0, "database": 0.0}
    if intake_pid is not None:
        out["intake"] = 0.0
    for pid, (command, _ppid, seconds) in after.items():
        group = "engine" if pid in engine else _GROUPS.get(command)
        if group is not None:
            used = seconds - before.get(pid, (command, 0, 0.0))[2]
            out[group] += used
            if pid == intake_pid:
                out["intake"] += used
    return out


def per_message_note(seconds: dict[str, float], messages: int) -> str:
    """``CPU µs/msg engine 650 broker 200 database 110 [intake 120]`` (empty when nothing was measured)."""
    if not seconds or not messages or not any(seconds.values()):
        return ""
    parts = " ".join(f"{k} {v / messages * 1e6:,.0f}" for k, v in seconds.items())
    return f"CPU µs/msg {parts}"
