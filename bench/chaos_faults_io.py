"""Infrastructure and wire faults: broker restart, database outage, MLLP cut mid-frame, truncated files.

The broker restart stops the real RabbitMQ application (``rabbitmqctl stop_app``) and always starts
it again (``start_app`` in a ``finally``); it is part of ``make chaos`` only, never of the test
subset. The database outage goes through the world's TCP proxy, so the shared cluster keeps running.
"""

from __future__ import annotations

import dataclasses
import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench.chaos_checker import Result, Snapshot
from bench.chaos_data import MessageSet, Sent, file_body, make_set
from bench.chaos_env import World
from bench.chaos_faults import FILE_STARTED, _sender_verdict
from bench.chaos_mllp import ResendingSender, disconnect_mid_frame
from bench.chaos_run import (
    Options,
    adapter_available,
    all_arrived,
    drop_files,
    drop_files_over,
    file_adapter,
    finish,
    free_port,
    inbox_empty,
    mllp_adapter,
    pace_for,
    snapshot,
    wait_for,
)


def _both_adapters(w: World, opts: Options, port: int) -> tuple[Path, Path]:
    inbox = w.dir / "in"
    inbox.mkdir()
    adapters = {"lab-mllp": mllp_adapter(port), "lab-files": file_adapter(inbox, opts.stable_seconds)}
    return w.config("all.yaml", adapters=adapters, workers=2), inbox


def _split(msgs: MessageSet) -> tuple[list[Sent], list[Sent]]:
    return msgs.messages[0::2], msgs.messages[1::2]


def _missing(*modules: str) -> str | None:
    for m in modules:
        if (why := adapter_available(m)) is not None:
            return why
    return None


Inject = Callable[[World, Callable[[], tuple[int, int]]], None]


def _intake_under_fault(
    opts: Options,
    res: Result,
    tag: str,
    world: str,
    seconds: float,
    span_extra: float,
    settle: float,
    inject: Inject,
    what: str,
    snapshot_after: bool,
) -> Result:
    """MLLP + file intake and workers in one engine; ``inject`` runs the fault (``seconds`` long) while
    messages keep coming; then the running engine must finish the work without a restart."""
    if (why := _missing("adapters.mllp", "adapters.hl7_file")) is not None:
        res.skipped = why
        return res
    msgs = make_set(tag, max(200, opts.messages // 4))
    with World(world, opts.keep) as w:
        port = free_port()
        cfg, inbox = _both_adapters(w, opts, port)
        by_mllp, by_file = _split(msgs)
        engine = w.spawn("engine", cfg)
        w.wait_started(engine, 60, b"mllp.listening")
        span = seconds + span_extra
        sender = ResendingSender(port, by_mllp, window=10, pace=pace_for(len(by_mllp), 10, span), give_up=seconds + 120)
        sender.start()
        feeder = drop_files_over(inbox, by_file, 20, span)
        time.sleep(settle)
        file_ids = {m.control_id for m in by_file}
        snaps = [Snapshot(sender.sent_so_far() | file_ids, snapshot(w, set()).arrived)]

        def handed_back() -> tuple[int, int]:
            return len(sender.acks), len(list((inbox / "archive").glob("*.hl7")))

        inject(w, handed_back)
        feeder.join(span + 10)
        if snapshot_after:
            snaps.append(Snapshot(sender.sent_so_far() | file_ids, snapshot(w, set()).arrived))
        sender.join(seconds + 180)
        _sender_verdict(res, sender)
        _recovered_in_place(w, res, msgs, inbox)
        if not engine.alive():
            res.errors.append(f"the engine died during the {what} outage")
        return finish(w, res, msgs, snapshots=snaps, dirs=(inbox,))


def broker_restart(opts: Options) -> Result:
    """MLLP + file intake and workers; RabbitMQ stopped mid-import for ``broker_outage`` seconds."""
    res = Result("broker restart")

    def inject(_w: World, handed_back: Callable[[], tuple[int, int]]) -> None:
        _broker_outage(opts.broker_outage, res, handed_back)

    return _intake_under_fault(opts, res, "br", "broker", opts.broker_outage, 6, 2.0, inject, "broker", True)


def _broker_outage(seconds: float, res: Result, handed_back: Callable[[], tuple[int, int]]) -> None:
    """Stop RabbitMQ for ``seconds``; no ACK may be sent and no file moved meanwhile."""
    ctl = ["rabbitmqctl", "-q"]
    try:
        subprocess.run([*ctl, "stop_app"], check=True, capture_output=True, timeout=60)
        time.sleep(min(1.0, seconds / 2))  # answers for publishes confirmed just before the stop
        before = handed_back()
        time.sleep(max(0.0, seconds - 1.0))
        after = handed_back()
        if after != before:
            res.errors.append(
                f"while the broker was away: {after[0] - before[0]} ACK(s) sent, "
                f"{after[1] - before[1]} file(s) archived"
            )
    finally:
        subprocess.run([*ctl, "start_app"], check=False, capture_output=True, timeout=120)
        subprocess.run([*ctl, "await_startup"], check=False, capture_output=True, timeout=120)
    res.notes.append(f"broker stopped for {seconds:.0f} s and started again")


def _recovered_in_place(w: World, res: Result, msgs: MessageSet, inbox: Path | None = None) -> None:
    """The running engine (not a restart) must finish the work once the fault is over."""
    if inbox is not None and not wait_for(inbox_empty(inbox), 90):
        res.errors.append("files still in the inbox after the fault (adapter did not recover)")
    if not wait_for(all_arrived(w, msgs), 90):
        res.errors.append("the running engine did not finish the work after the fault (no reconnect?)")


def db_outage(opts: Options) -> Result:
    """MLLP + file intake and workers; PostgreSQL unreachable through the proxy for ``db_outage`` s."""
    res = Result(f"PostgreSQL outage ({opts.db_mode}, {opts.db_outage:.0f} s)")

    def inject(w: World, _handed_back: Callable[[], tuple[int, int]]) -> None:
        w.proxy.stall() if opts.db_mode == "stall" else w.proxy.drop()
        try:
            time.sleep(opts.db_outage)
        finally:
            w.proxy.restore()

    return _intake_under_fault(opts, res, "db", "db", opts.db_outage, 4, 1.5, inject, "database", False)


def db_stall(opts: Options) -> Result:
    """The database outage as a partition: connections stay open but nothing flows."""
    return db_outage(dataclasses.replace(opts, db_mode="stall"))


def mllp_mid_frame(opts: Options) -> Result:
    """Clients that disconnect mid-frame; each message is then sent again, whole, by a real sender."""
    res = Result("MLLP disconnect mid-frame")
    if (why := adapter_available("adapters.mllp")) is not None:
        res.skipped = why
        return res
    rng, msgs = random.Random(opts.seed + 3), make_set("mf", 60)
    with World("midframe", opts.keep) as w:
        port = free_port()
        engine = w.spawn("engine", w.config("all.yaml", adapters={"lab-mllp": mllp_adapter(port)}))
        w.wait_started(engine, 60, b"mllp.listening")
        cut = msgs.messages[::3]
        for m in cut:
            disconnect_mid_frame(port, m, rng.choice((0.05, 0.3, 0.5, 0.9, 0.999)))
        snaps = [Snapshot({m.control_id for m in cut}, snapshot(w, set()).arrived)]
        sender = ResendingSender(port, msgs.messages, window=5)
        sender.start()
        sender.join(120)
        _sender_verdict(res, sender)
        res.notes.append(f"{len(cut)} frames cut mid-way before being sent whole")
        return finish(w, res, msgs, snapshots=snaps)


def truncated_files(opts: Options) -> Result:
    """A file written slowly (must not be read early) and files truncated for good (error or dead letter)."""
    res = Result("truncated file")
    if (why := adapter_available("adapters.hl7_file")) is not None:
        res.skipped = why
        return res
    msgs = make_set("tf", 40, malformed_every=0)
    with World("truncated", opts.keep) as w:
        inbox = w.dir / "in"
        inbox.mkdir()
        engine = w.spawn(
            "engine", w.config("all.yaml", adapters={"lab-files": file_adapter(inbox, opts.stable_seconds)})
        )
        w.wait_started(engine, 60, FILE_STARTED)
        slow, whole, cut_pid, cut_msh = msgs.messages[:20], msgs.messages[20:35], msgs.messages[35], msgs.messages[36]
        _write_slowly(inbox / "slow.hl7", file_body(slow), opts.stable_seconds)
        drop_files(inbox, whole, per_file=15, prefix="whole")
        truncated = _write_truncated(inbox, whole[-1], cut_pid, cut_msh)
        msgs.messages = msgs.messages[:37]
        if not wait_for(inbox_empty(inbox), 60):
            res.errors.append("files left in the inbox")
        return finish(w, res, msgs, truncated=truncated, dirs=(inbox,))


def _write_slowly(path: Path, body: bytes, stable: float, parts: int = 6) -> None:
    """Append ``body`` in ``parts`` pieces, pausing less than ``stable`` seconds between them."""
    step = max(1, len(body) // parts)
    with open(path, "wb") as f:
        for i in range(0, len(body), step):
            f.write(body[i : i + step])
            f.flush()
            time.sleep(stable * 0.6)


def _write_truncated(inbox: Path, good: Sent, cut_pid: Sent, cut_msh: Sent) -> dict[str, Path]:
    """``cut1.hl7``: a whole message, then one cut right after its MSH; ``cut2.hl7``: only an MSH."""
    head = cut_pid.raw.split(b"\r", 1)[0] + b"\rPI"
    (inbox / "cut1.hl7").write_bytes(good.raw + b"\n" + head)
    (inbox / "cut2.hl7").write_bytes(cut_msh.raw.split(b"\r", 1)[0])
    return {cut_pid.control_id: inbox / "cut1.hl7", cut_msh.control_id: inbox / "cut2.hl7"}
