"""``make chaos``: the fault suite against the real RabbitMQ and PostgreSQL on 127.0.0.1.

Drives a known set of HL7 v2 messages through engine subprocesses while injecting faults, then
reconciles the journal and the dead letters against what was sent (:mod:`bench.chaos_checker`) and
prints, per fault, Jepsen's counters (lost, duplicated, unexpected, recovered) and a fifth line,
pii-in-logs. Exit status 1 when anything was lost or duplicated, PII was found or a check failed
(SIGTERM exit code, reconnect); 2 when the services are not reachable.

Faults (``--only`` takes these names): worker-kill, mllp-kill, file-kill, broker-restart, db-outage
(connections cut and refused), db-stall (connections open, nothing flows), sigterm, mllp-mid-frame,
truncated-file, inbox-symlink (links to /etc/passwd and /proc/self/environ among the files),
inbox-unreadable (chmod 000 for a while), fd-exhaustion (no descriptor left for a while), poison
(messages and envelopes PostgreSQL cannot store, mixed into an import). Examples::

    python -m bench.chaos                       # everything, full durations (~10 minutes)
    python -m bench.chaos --fast --no-broker    # the short version, broker left alone
    python -m bench.chaos --only db-outage db-stall --db-outage 60
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Callable

from bench import chaos_faults as pf
from bench import chaos_faults_inbox as inbox
from bench import chaos_faults_io as io
from bench import chaos_faults_poison as poison
from bench.chaos_checker import Result
from bench.chaos_run import Options, fast

FAULTS: dict[str, Callable[[Options], Result]] = {
    "worker-kill": pf.worker_kill,
    "mllp-kill": pf.mllp_adapter_kill,
    "file-kill": pf.file_adapter_kill,
    "broker-restart": io.broker_restart,
    "db-outage": io.db_outage,
    "db-stall": io.db_stall,
    "sigterm": pf.sigterm_under_load,
    "mllp-mid-frame": io.mllp_mid_frame,
    "truncated-file": io.truncated_files,
    "inbox-symlink": inbox.inbox_symlink,
    "inbox-unreadable": inbox.inbox_unreadable,
    "fd-exhaustion": inbox.fd_exhaustion,
    "poison": poison.poison,
}
COUNTERS = ("lost", "duplicated", "unexpected", "recovered", "pii")


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, Options]:
    ap = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=sorted(FAULTS), help="run only these faults")
    ap.add_argument("--fast", action="store_true", help="small sizes and short outages")
    ap.add_argument("--no-broker", action="store_true", help="leave RabbitMQ running (skip broker-restart)")
    ap.add_argument("--messages", type=int, help="size of the worker-kill backlog (others use a quarter)")
    ap.add_argument("--worker-kills", type=int)
    ap.add_argument("--adapter-kills", type=int)
    ap.add_argument("--db-outage", type=float, help="seconds PostgreSQL is unreachable (default 30)")
    ap.add_argument("--db-mode", choices=("drop", "stall"), help="db-outage: cut connections (default) or stall")
    ap.add_argument("--broker-outage", type=float, help="seconds RabbitMQ is stopped (default 10)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--keep", action="store_true", help="keep each fault's directory (configs, logs)")
    args = ap.parse_args(argv)
    opts = fast() if args.fast else Options()
    for name in ("messages", "worker_kills", "adapter_kills", "db_outage", "db_mode", "broker_outage", "seed"):
        if getattr(args, name) is not None:
            setattr(opts, name, getattr(args, name))
    opts.keep = args.keep
    return args, opts


def services_up() -> bool:
    for port in (5672, 5432):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            print(f"chaos: nothing listens on 127.0.0.1:{port} (RabbitMQ 5672 and PostgreSQL 5432 are needed)")
            return False
    return True


def report(res: Result, seconds: float) -> None:
    state = "SKIPPED" if res.skipped else ("ok" if res.ok else "FAILED")
    print(f"\n== {res.fault}: {state} ({res.sent} messages, {seconds:.0f} s)")
    if res.skipped:
        print(f"   {res.skipped}")
        return
    for name in COUNTERS:
        label = "pii-in-logs" if name == "pii" else name
        print(f"   {label:<12} {getattr(res, name)}")
    for line in res.errors:
        print(f"   ERROR: {line}")
    for line in res.notes:
        print(f"   note: {line}")


def summary(rows: list[tuple[Result, float]]) -> None:
    print("\n" + f"{'fault':<34}" + "".join(f"{c:>12}" for c in (*COUNTERS[:4], "pii-in-logs")) + "  verdict")
    for res, _s in rows:
        values = "".join(f"{'-' if res.skipped else getattr(res, c):>12}" for c in COUNTERS)
        verdict = "skipped" if res.skipped else ("ok" if res.ok else "FAILED")
        print(f"{res.fault:<34}{values}  {verdict}")


def run(names: list[str], opts: Options) -> list[tuple[Result, float]]:
    rows = []
    for name in names:
        t0 = time.monotonic()
        try:
            res = FAULTS[name](opts)
        except Exception as exc:  # noqa: BLE001 - one broken fault must not hide the others
            res = Result(name)
            res.errors.append(f"the fault itself failed: {type(exc).__name__}: {str(exc)[:200]}")
        rows.append((res, time.monotonic() - t0))
        report(*rows[-1])
        sys.stdout.flush()
    return rows


def main(argv: list[str] | None = None) -> int:
    args, opts = parse(argv)
    if not services_up():
        return 2
    names = args.only or [n for n in FAULTS if not (args.no_broker and n == "broker-restart")]
    t0 = time.monotonic()
    rows = run(names, opts)
    summary(rows)
    failed = [r.fault for r, _ in rows if not r.ok]
    print(
        f"\n{len(rows)} fault(s) in {time.monotonic() - t0:.0f} s; "
        + (f"FAILED: {', '.join(failed)}" if failed else "lost = 0, duplicated = 0, no PII in logs")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
