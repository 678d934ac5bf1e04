"""Inbox faults: symlinks to secrets among the files, an inbox that turns unreadable, descriptor exhaustion.

One engine (hl7-file and kith-file adapters, workers) takes HL7 v2 files (the known set of
:mod:`bench.chaos_data`) and KITH Svarrapport files (synthetic patients, :func:`bench.data.svarrapport`)
dropped over a span of time while the fault hits; the journal is reconciled against both.

* ``inbox-symlink``: symlinks to ``/etc/passwd`` and ``/proc/self/environ`` (the engine's own
  environment holds a secret token), dangling ones and FIFOs are planted among the files. Nothing of
  the targets may reach the store, the queue, a ``.reason`` file or a log, each entry must end in
  ``error/`` itself, and every valid file must arrive.
* ``inbox-unreadable``: both inboxes ``chmod 000`` for a while. The engine runs as root without
  ``CAP_DAC_OVERRIDE`` / ``CAP_DAC_READ_SEARCH`` (``setpriv``), so the permission bits bind it: a real
  ``EACCES``. It must wait, resume by itself (never restarted) and lose or duplicate nothing.
* ``fd-exhaustion``: the running engine's soft ``RLIMIT_NOFILE`` is lowered (``prlimit``) to its
  lowest free descriptor, so it has none left (``EMFILE``) for a while, then raised again.
"""

from __future__ import annotations

import json
import os
import re
import resource
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench import data
from bench.chaos_checker import Result, Snapshot, pii_sources
from bench.chaos_data import MessageSet, make_set
from bench.chaos_env import Proc, World
from bench.chaos_faults import FILE_STARTED
from bench.chaos_run import (
    Options,
    adapter_available,
    all_arrived,
    drop_files_over,
    file_adapter,
    finish,
    inbox_empty,
    snapshot,
    wait_for,
)
from engine.model import MapContext
from engine.registry import resolve_mapping
from engine.store import schema as s

KITH_STARTED = b"kith.started"
SECRET_VAR = "ENJOURNAL_CHAOS_SECRET"
PASSWD_MARK = b"root:x:0:0"
_MSGID = re.compile(rb"<MsgId>([^<]+)</MsgId>")


def _outage(opts: Options) -> float:
    """How long the inbox stays broken: half the database outage (15 s in ``make chaos``, 3 s ``--fast``)."""
    return max(3.0, opts.db_outage / 2)


# -- the KITH files beside the HL7 set ------------------------------------------------------------
class KithSet:
    """Svarrapport files of synthetic patients; the records each must give."""

    def __init__(self, count: int, seed: int) -> None:
        template = data.kith_template() or ""
        self.patients = data.patients(count, seed=seed)
        self.files = [data.svarrapport(i, p, template, seed) for i, p in enumerate(self.patients)]
        self.ids = [_msg_id(raw) for raw in self.files]
        ctx = MapContext(envelope_id="expected", adapter="chaos", received_at=datetime.now(UTC))
        kith = resolve_mapping("kith")
        self.expected = {
            mid: {(r.key, r.version_hash()) for r in kith(raw, ctx).records}
            for mid, raw in zip(self.ids, self.files, strict=True)
        }

    def personal(self) -> set[str]:
        return {v for p in self.patients for v in (p.fnr, p.family, p.given)}


def _msg_id(raw: bytes) -> str:
    m = _MSGID.search(raw)
    assert m is not None, "the KITH template has no MsgId"
    return m.group(1).decode()


def _drop_kith_over(inbox: Path, kith: KithSet, seconds: float) -> threading.Thread:
    def feed() -> None:
        for i, raw in enumerate(kith.files):
            tmp = inbox / f"svar{i:05d}.xml.tmp"
            tmp.write_bytes(raw)
            tmp.rename(inbox / f"svar{i:05d}.xml")
            time.sleep(seconds / max(1, len(kith.files)))

    t = threading.Thread(target=feed, name="chaos-kith-feeder", daemon=True)
    t.start()
    return t


def _kith_arrived(w: World, kith: KithSet) -> Callable[[], bool]:
    want = set().union(*kith.expected.values())

    def check() -> bool:
        assert w.store is not None
        with w.store.engine.connect() as c:
            rows = c.execute(sa.select(s.record_versions.c.record_key, s.record_versions.c.version_hash))
            return want <= {(r[0], r[1]) for r in rows}

    return check


def _account_kith(res: Result, w: World, kith: KithSet, dirs: tuple[Path, ...]) -> None:
    """Count the KITH files into the counters (the HL7 reconcile saw their rows as unexpected)."""
    assert w.store is not None
    rv = s.record_versions
    with w.store.engine.connect() as c:
        rows = [
            (r[0], r[1], r[2]) for r in c.execute(sa.select(rv.c.record_key, rv.c.version_hash, rv.c.source_message_id))
        ]
    expected = set().union(*kith.expected.values())
    present = {(k, h) for k, h, _ in rows}
    ours = [(k, h) for k, h, sid in rows if sid in kith.expected]
    extra = sum(1 for pair in ours if pair not in expected)
    res.unexpected -= len(ours)
    res.duplicated += extra
    res.lost += sum(1 for pairs in kith.expected.values() if not pairs <= present)
    res.sent += len(kith.files)
    names = kith.personal()
    for place, text in pii_sources(w.logs(), w.store.engine, [], dirs):
        hits = sum(text.count(n) for n in names)
        if hits:
            res.pii += hits
            res.notes.append(f"PII (KITH patients): {hits} hit(s) in {place}")


# -- one engine with both adapters -----------------------------------------------------------------
def _kith_adapter(inbox: Path, outbox: Path, stable: float) -> dict[str, Any]:
    return {
        "type": "kith-file",
        "directory": str(inbox),
        "pattern": "*.xml",
        "outbox": str(outbox),
        "poll_interval": 0.2,
        "stable_seconds": stable,
        "sender_her_id": "12345",
        "source_system": "chaos",
    }


def _inboxes(w: World, opts: Options) -> tuple[Path, Path, Path]:
    hl7, kith = w.dir / "in-hl7", w.dir / "in-kith"
    hl7.mkdir()
    kith.mkdir()
    adapters = {
        "lab-files": file_adapter(hl7, opts.stable_seconds),
        "kith-files": _kith_adapter(kith, w.dir / "out-kith", opts.stable_seconds),
    }
    return w.config("engine.yaml", adapters=adapters, workers=2), hl7, kith


def _started(w: World, proc: Proc, res: Result) -> bool:
    ok = w.wait_started(proc, 60, FILE_STARTED) and w.wait_started(proc, 30, KITH_STARTED)
    if not ok:
        res.errors.append("the engine did not start")
    return ok


@contextmanager
def _feeding(hl7: Path, kith_inbox: Path, msgs: MessageSet, kith: KithSet, span: float) -> Iterator[None]:
    feeders = [drop_files_over(hl7, msgs.messages, 20, span), _drop_kith_over(kith_inbox, kith, span)]
    yield
    for t in feeders:
        t.join(span + 30)


def _recovered(
    w: World, res: Result, msgs: MessageSet, kith: KithSet, hl7: Path, kith_inbox: Path, engine: Proc
) -> None:
    """The running engine (never restarted) finishes everything once the fault is over."""
    if not wait_for(lambda: inbox_empty(hl7)() and not any(kith_inbox.glob("*.xml")), 120):
        res.errors.append("files still in an inbox after the fault (the adapter did not recover)")
    if not wait_for(lambda: all_arrived(w, msgs)() and _kith_arrived(w, kith)(), 120):
        res.errors.append("the running engine did not finish the work after the fault")
    if not engine.alive():
        res.errors.append("the engine died during the fault")


def _run(
    opts: Options,
    res: Result,
    world: str,
    tag: str,
    inject: Callable[[World, Proc, Path, Path], None],
    prefix: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    check: Callable[[World, Proc, Path, Path], None] | None = None,
) -> Result:
    """Feed HL7 and KITH files for a while to one engine; ``inject`` the fault meanwhile; reconcile."""
    for module in ("adapters.hl7_file", "adapters.kith_file"):
        if (why := adapter_available(module)) is not None:
            res.skipped = why
            return res
    msgs = make_set(tag, max(200, opts.messages // 4))
    kith = KithSet(max(30, opts.messages // 40), opts.seed)
    with World(world, opts.keep) as w:
        cfg, hl7, kith_inbox = _inboxes(w, opts)
        engine = w.spawn("engine", cfg, prefix=prefix, env=env)
        if not _started(w, engine, res):
            return finish(w, res, msgs, dirs=(hl7, kith_inbox))
        span = _outage(opts) + 6
        with _feeding(hl7, kith_inbox, msgs, kith, span):
            time.sleep(1.5)
            snaps = [Snapshot({m.control_id for m in msgs.messages}, snapshot(w, set()).arrived)]
            inject(w, engine, hl7, kith_inbox)
        _recovered(w, res, msgs, kith, hl7, kith_inbox, engine)
        if check is not None:
            check(w, engine, hl7, kith_inbox)
        finish(w, res, msgs, snapshots=snaps, dirs=(hl7, kith_inbox))
        _account_kith(res, w, kith, (hl7, kith_inbox))
        return res


# -- the faults ------------------------------------------------------------------------------------------
def inbox_symlink(opts: Options) -> Result:
    """Symlinks to /etc/passwd and /proc/self/environ (and dangling links, FIFOs) among the files."""
    res, token = Result("inbox symlinks to secrets"), uuid.uuid4().hex
    planted: list[Path] = []

    def inject(_w: World, _engine: Proc, hl7: Path, kith_inbox: Path) -> None:
        for i in range(int(_outage(opts) * 2)):
            for inbox, suffix in ((hl7, ".hl7"), (kith_inbox, ".xml")):
                planted.extend(_plant(inbox, suffix, i))
            time.sleep(0.5)

    def check(w: World, engine: Proc, _hl7: Path, _kith: Path) -> None:
        _check_planted(res, planted)
        _check_no_secret(res, w, (PASSWD_MARK, token.encode()))
        refused = sum(1 for _ in _events(engine, ("inbox.not_regular",)))
        res.notes.append(f"{len(planted)} entries planted, {refused} refused in the log")
        if refused != len(planted):
            res.errors.append(f"{len(planted)} entries planted but {refused} inbox.not_regular lines")

    return _run(opts, res, "inbox-symlink", "sy", inject, env={SECRET_VAR: token}, check=check)


def _plant(inbox: Path, suffix: str, i: int) -> list[Path]:
    made = [
        inbox / f"passwd{i:03d}{suffix}",
        inbox / f"environ{i:03d}{suffix}",
        inbox / f"dangling{i:03d}{suffix}",
        inbox / f"fifo{i:03d}{suffix}",
    ]
    os.symlink("/etc/passwd", made[0])
    os.symlink("/proc/self/environ", made[1])
    os.symlink(inbox / f"nothing{i}", made[2])
    os.mkfifo(made[3])
    return made


def _check_planted(res: Result, planted: list[Path]) -> None:
    """Each planted entry is in error/ itself (a link stays a link) with its reason, none in the inbox."""
    for p in planted:
        moved = p.parent / "error" / p.name
        reason = moved.with_name(moved.name + ".reason")
        if os.path.lexists(p) or not os.path.lexists(moved):
            res.errors.append(f"{p.name} was not moved to error/")
        elif stat.S_ISLNK(moved.lstat().st_mode) != p.name.startswith(("passwd", "environ", "dangling")):
            res.errors.append(f"{p.name} changed kind on its way to error/")
        elif not reason.exists() or not reason.read_text().startswith("INBOX_NOT_REGULAR"):
            res.errors.append(f"{p.name} has no INBOX_NOT_REGULAR reason")


def _check_no_secret(res: Result, w: World, marks: tuple[bytes, ...]) -> None:
    """No byte of the link targets in raw_archive (all that went through the queue), dead letters, logs."""
    assert w.store is not None
    with w.store.engine.connect() as c:
        texts = [("raw_archive", bytes(r[0])) for r in c.execute(sa.select(s.raw_archive.c.raw))]
        texts += [("dead_letters", r[0].encode()) for r in c.execute(sa.select(s.dead_letters.c.reason))]
    texts += [(p.name, p.read_bytes()) for p in w.logs() if p.exists()]
    texts += [(p.name, p.read_bytes()) for p in w.dir.rglob("*.reason")]
    for place, text in texts:
        for mark in marks:
            if mark in text:
                res.pii += 1
                res.notes.append(f"a link target's content in {place}")


def inbox_unreadable(opts: Options) -> Result:
    """Both inboxes chmod 000 for a while (a real EACCES: the engine lacks CAP_DAC_OVERRIDE), then 755."""
    res = Result("inbox unreadable, then readable")
    seconds = _outage(opts)
    no_override = (
        "setpriv",
        "--bounding-set",
        "-dac_override,-dac_read_search",
        "--inh-caps",
        "-dac_override,-dac_read_search",
        "--",
    )

    def inject(_w: World, _engine: Proc, hl7: Path, kith_inbox: Path) -> None:
        try:
            for inbox in (hl7, kith_inbox):
                inbox.chmod(0o000)
            time.sleep(seconds)
        finally:
            for inbox in (hl7, kith_inbox):
                inbox.chmod(0o755)
        res.notes.append(f"inboxes unreadable for {seconds:.0f} s")

    def check(_w: World, engine: Proc, _hl7: Path, _kith: Path) -> None:
        _check_states(res, engine, "EACCES")

    return _run(opts, res, "inbox-unreadable", "ur", inject, prefix=no_override, check=check)


def fd_exhaustion(opts: Options) -> Result:
    """The running engine left without a free descriptor (soft RLIMIT_NOFILE lowered) for a while."""
    res = Result("descriptor exhaustion")
    seconds = _outage(opts)

    def inject(_w: World, engine: Proc, _hl7: Path, _kith: Path) -> None:
        pid = engine.popen.pid
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        try:
            lowest = _lowest_free_fd(pid)
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest, hard))
            time.sleep(seconds)
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        res.notes.append(f"engine limited to {lowest} descriptors (all in use) for {seconds:.0f} s")

    def check(_w: World, engine: Proc, _hl7: Path, _kith: Path) -> None:
        _check_states(res, engine, "EMFILE")

    return _run(opts, res, "fd-exhaustion", "fd", inject, check=check)


def _lowest_free_fd(pid: int) -> int:
    used = {int(n) for n in os.listdir(f"/proc/{pid}/fd")}
    return next(i for i in range(len(used) + 1) if i not in used)


def _check_states(res: Result, engine: Proc, errno_name: str) -> None:
    """Each adapter logged the fault when it began (again only if the errno changed) and once when it ended,
    never once per poll."""
    states: dict[str, list[str]] = {}
    for e in _events(engine, ("inbox.unavailable", "inbox.available")):
        states.setdefault(str(e.get("adapter")), []).append(e.get("errno") or "available")
    res.notes.append("log: " + "; ".join(f"{a}: {' -> '.join(v)}" for a, v in sorted(states.items())))
    if not any(errno_name in v for v in states.values()):
        res.errors.append(f"the fault did not bite: no inbox.unavailable with {errno_name} in the log")
    for adapter, seq in states.items():
        if seq[-1] != "available" or seq.count("available") != 1 or len(seq) > 3:
            res.errors.append(f"{adapter}: inbox state changes not logged once each ({len(seq)} lines)")


def _events(engine: Proc, names: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The engine's JSON log lines whose event is one of ``names``."""
    for line in engine.log.read_text("utf-8", "replace").splitlines():
        if line.startswith("{") and any(f'"{n}"' in line for n in names):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") in names:
                yield event
