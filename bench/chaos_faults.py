"""Process faults: kill -9 of workers and adapters at random points, SIGTERM under load.

Each fault builds its own :class:`bench.chaos_env.World`, drives a known message set through the
engine while injecting the fault, and returns a :class:`bench.chaos_checker.Result`.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import sqlalchemy as sa

from bench.chaos_checker import Result, Snapshot
from bench.chaos_data import MessageSet, make_set
from bench.chaos_env import Proc, World
from bench.chaos_mllp import ResendingSender
from bench.chaos_run import (
    Options,
    adapter_available,
    all_arrived,
    drop_files,
    file_adapter,
    finish,
    free_port,
    inbox_empty,
    mllp_adapter,
    pace_for,
    publish,
    snapshot,
    wait_for,
)
from engine.store.schema import raw_archive

FILE_STARTED = b"hl7_file.started"


def worker_kill(opts: Options) -> Result:
    """A backlog fed in waves; a worker engine killed -9 ``worker_kills`` times, mostly mid-batch.

    Each wave is published before the worker starts; every other kill waits for the first commit
    of the run and then a random fraction of a second (inside a batch), the others a random time
    after start-up (anywhere: consuming, mapping, committing, acking).
    """
    res, rng = Result("worker kill -9"), random.Random(opts.seed)
    msgs = make_set("wk", opts.messages)
    waves = max(1, opts.worker_kills)
    with World("worker-kill", opts.keep) as w:
        cfg, snaps, busy = w.config("worker.yaml", batch_size=25), [], 0
        for i in range(opts.worker_kills):
            publish(w, msgs.messages[i * len(msgs.messages) // waves : (i + 1) * len(msgs.messages) // waves])
            sent, before = _published(msgs, i + 1, waves), _committed(w)
            proc = w.spawn("worker", cfg)
            w.wait_started(proc, 60)
            if i % 2 == 0 and wait_for(lambda b=before: _committed(w) > b, 20, step=0.02):
                time.sleep(rng.uniform(0.0, 0.3))
            else:
                time.sleep(rng.uniform(0.3, 2.5))
            snaps.append(snapshot(w, sent))
            busy += int(_committed(w) > before)
            proc.kill9()
        res.notes.append(
            f"{opts.worker_kills} kill points, {busy} after the worker had committed; "
            f"{len(snaps[-1].arrived) if snaps else 0} of {len(msgs.messages)} arrived before the last"
        )
        return finish(w, res, msgs, snapshots=snaps)


def _published(msgs: MessageSet, waves_done: int, waves: int) -> set[str]:
    return {m.control_id for m in msgs.messages[: waves_done * len(msgs.messages) // waves]}


def _committed(w: World) -> int:
    """Envelopes committed so far (rows in the raw archive)."""
    assert w.store is not None
    with w.store.engine.connect() as c:
        return int(c.execute(sa.select(sa.func.count()).select_from(raw_archive)).scalar() or 0)


def mllp_adapter_kill(opts: Options) -> Result:
    """An MLLP sender that resends what was not ACKed; the adapter process killed -9 mid-stream."""
    res = Result("mllp adapter kill -9")
    if (why := adapter_available("adapters.mllp")) is not None:
        res.skipped = why
        return res
    rng, msgs = random.Random(opts.seed + 1), make_set("mk", max(200, opts.messages // 4))
    with World("mllp-kill", opts.keep) as w:
        port = free_port()
        intake = w.config("intake.yaml", adapters={"lab-mllp": mllp_adapter(port)})
        w.spawn("worker", w.config("worker.yaml"))
        adapter = _start_adapter(w, intake, res)
        span = opts.adapter_kills * 5.0  # a kill, a restart: traffic keeps flowing across all of them
        sender = ResendingSender(port, msgs.messages, window=10, pace=pace_for(len(msgs.messages), 10, span))
        sender.start()
        snaps = []
        hits = 0
        for _ in range(opts.adapter_kills):
            time.sleep(rng.uniform(0.5, 2.5))
            sender.mid_window.wait(10)  # kill while a window waits for its ACKs: between receive and ACK
            snaps.append(Snapshot(sender.sent_so_far() - set(sender.acks), snapshot(w, set()).arrived))
            hits += int(sender.mid_window.is_set())
            adapter.kill9()
            time.sleep(rng.uniform(0.0, 1.0))
            adapter = _start_adapter(w, intake, res)
        sender.join(180)
        _sender_verdict(res, sender)
        res.notes.append(f"{hits} of {opts.adapter_kills} kills while ACKs were outstanding")
        wait_for(all_arrived(w, msgs), 60)
        return finish(w, res, msgs, snapshots=snaps)


def _start_adapter(w: World, config: Path, res: Result, marker: bytes = b"mllp.listening") -> Proc:
    proc = w.spawn("adapter", config, "--no-workers")
    if not w.wait_started(proc, 60, marker):
        res.errors.append("adapter did not start")
    return proc


def _sender_verdict(res: Result, sender: ResendingSender) -> None:
    if sender.is_alive() or sender.error:
        res.errors.append(f"MLLP sender did not finish ({sender.error or 'timeout'})")
    res.notes.append(f"MLLP: {len(sender.acks)} ACKed, {sender.resends} resent, {sender.reconnects} connections")


def file_adapter_kill(opts: Options) -> Result:
    """HL7 files dropped into a directory; the hl7-file adapter killed -9 between publish and move."""
    res = Result("hl7-file adapter kill -9")
    if (why := adapter_available("adapters.hl7_file")) is not None:
        res.skipped = why
        return res
    rng, msgs = random.Random(opts.seed + 2), make_set("fk", max(200, opts.messages // 4))
    with World("file-kill", opts.keep) as w:
        inbox = w.dir / "in"
        intake = w.config("intake.yaml", adapters={"lab-files": file_adapter(inbox, opts.stable_seconds)})
        w.spawn("worker", w.config("worker.yaml"))
        drop_files(inbox, msgs.messages, per_file=20)
        adapter = _start_adapter(w, intake, res, FILE_STARTED)
        snaps = []
        for _ in range(opts.adapter_kills):
            _while_moving(inbox, rng)
            snaps.append(Snapshot({m.control_id for m in msgs.messages}, snapshot(w, set()).arrived))
            adapter.kill9()
            adapter = _start_adapter(w, intake, res, FILE_STARTED)
        if not wait_for(inbox_empty(inbox), 120):
            res.errors.append("files left in the inbox")
        _file_notes(res, inbox)
        return finish(w, res, msgs, snapshots=snaps, dirs=(inbox,))


def _while_moving(inbox: Path, rng: random.Random, timeout: float = 30.0) -> None:
    """Return just after the adapter archived a file: it is then reading or publishing the next one."""
    archive = inbox / "archive"
    start = len(list(archive.glob("*.hl7")))
    wait_for(lambda: len(list(archive.glob("*.hl7"))) > start or inbox_empty(inbox)(), timeout, step=0.01)
    time.sleep(rng.uniform(0.0, 0.1))


def _file_notes(res: Result, inbox: Path) -> None:
    errors = [p.name for p in (inbox / "error").glob("*") if not p.name.endswith(".reason")]
    if errors:
        res.errors.append(f"{len(errors)} good file(s) moved to error/")


def sigterm_under_load(opts: Options) -> Result:
    """Backlog + MLLP traffic; SIGTERM must drain and exit 0 within the deadline; a restart finishes."""
    res = Result("SIGTERM under load")
    if (why := adapter_available("adapters.mllp")) is not None:
        res.skipped = why
        return res
    backlog, live = make_set("st", opts.messages // 2), make_set("sl", max(100, opts.messages // 6))
    with World("sigterm", opts.keep) as w:
        port = free_port()
        cfg = w.config("all.yaml", adapters={"lab-mllp": mllp_adapter(port)}, workers=2)
        publish(w, backlog.messages)
        engine = w.spawn("engine", cfg)
        w.wait_started(engine, 60, b"mllp.listening")
        sender = ResendingSender(port, live.messages, window=10, pace=0.02)
        sender.start()
        time.sleep(2.0)
        snaps = [Snapshot(sender.sent_so_far() | {m.control_id for m in backlog.messages}, snapshot(w, set()).arrived)]
        t0 = time.monotonic()
        code = engine.term(opts.sigterm_deadline)
        res.notes.append(f"SIGTERM: exit {code} after {time.monotonic() - t0:.1f} s")
        if code != 0:
            res.errors.append(f"SIGTERM: exit code {code} (deadline {opts.sigterm_deadline:.0f} s)")
            engine.kill9()
        w.wait_started(w.spawn("engine", cfg), 60, b"mllp.listening")
        sender.join(180)
        _sender_verdict(res, sender)
        backlog.messages += live.messages
        wait_for(all_arrived(w, backlog), 60)
        return finish(w, res, backlog, snapshots=snaps)
