"""Poison envelopes on PostgreSQL: messages no database column can hold, mixed into a normal import.

The known message set goes through engine processes on RabbitMQ + PostgreSQL, half as HL7 files (the
``hl7-file`` adapter) and half published straight onto the bus, with poison among them:

* a 0x00 byte in MSH-10, in PID-3, in an OBX-5 text value; an HL7 hex escape ``\\X00\\`` in PID-5 (NUL
  without a 0x00 byte); a PID-3 identifier and an MSH-10 longer than their columns: each must be
  dead-lettered ``TEXT_NOT_STORABLE`` by the mapping step;
* envelopes whose metadata no column can hold (an id and an adapter name longer than their columns, as a
  damaged or foreign envelope could carry): the worker makes the metadata storable
  (:func:`engine.store.text.storable_envelope`) and each must be journaled; before, such an id stopped
  its batch for good;
* a 0x00 byte in MSH-3 only, which reaches nothing but the dedup key: the HL7 v2 mapping refuses a message
  with a NUL byte anywhere (it can hide a segment), so it too must be dead-lettered ``TEXT_NOT_STORABLE``.

Every other message must be in the journal, nothing twice, the engine processes alive, no service
crashed, and every dead letter must carry its code (Jepsen's counters, :mod:`bench.chaos_checker`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bench.chaos_checker import Result
from bench.chaos_data import MessageSet, Sent, make_set, oru
from bench.chaos_env import Proc, World
from bench.chaos_faults import FILE_STARTED
from bench.chaos_run import Options, adapter_available, all_arrived, drop_files, file_adapter, finish, wait_for
from engine.envelope import Envelope, new_id

NOT_STORABLE = "TEXT_NOT_STORABLE"
_OBX2 = b"OBX|2|NM|NPU19748^CRP;P^NLK||"

Variant = Callable[[Sent, int], tuple[str, bytes]]  # -> (control id, raw)


def _msh10_nul(m: Sent, n: int) -> tuple[str, bytes]:
    cid = m.control_id + "\x00X"
    return cid, m.raw.replace(m.control_id.encode() + b"|", cid.encode() + b"|", 1)


def _msh10_long(m: Sent, n: int) -> tuple[str, bytes]:
    cid = m.control_id + "L" * 240
    return cid, m.raw.replace(m.control_id.encode() + b"|", cid.encode() + b"|", 1)


def _pid3_nul(m: Sent, n: int) -> tuple[str, bytes]:
    return m.control_id, m.raw.replace(b"^^^^FNR", b"\x00^^^^FNR", 1)


def _pid3_long(m: Sent, n: int) -> tuple[str, bytes]:
    return m.control_id, m.raw.replace(f"L{n}^^^CHAOS_HF".encode(), f"L{n}{'7' * 140}^^^CHAOS_HF".encode(), 1)


def _pid5_escape(m: Sent, n: int) -> tuple[str, bytes]:
    return m.control_id, m.raw.replace(f"|{m.family}^".encode(), f"|{m.family[:3]}\\X00\\{m.family[3:]}^".encode(), 1)


def _obx5_nul(m: Sent, n: int) -> tuple[str, bytes]:
    raw = oru(m.control_id, m.fnr, m.family, m.given, n)  # an ORU^R01 whatever message ``m`` was
    head, _, rest = raw.partition(_OBX2)
    return m.control_id, head + b"OBX|2|ST|NPU19748^CRP;P^NLK||posi\x00tive" + rest[rest.index(b"|") :]


#: (variant, the code it must end with); None: the message must be journaled
VARIANTS: tuple[tuple[Variant, str | None], ...] = (
    (_msh10_nul, NOT_STORABLE),
    (_pid3_nul, NOT_STORABLE),
    (_obx5_nul, NOT_STORABLE),
    (_pid5_escape, NOT_STORABLE),
    (_pid3_long, NOT_STORABLE),
    (_msh10_long, NOT_STORABLE),
    (lambda m, n: (m.control_id, m.raw.replace(b"|CHAOSLAB|", b"|CHAOS\x00LAB|", 1)), NOT_STORABLE),
)


def poison_set(run: str, count: int, every: int = 10) -> MessageSet:
    """The chaos message set with every ``every``-th well-formed message turned into a poison variant."""
    msgs = make_set(run, count)
    k = 0
    for n, m in enumerate(msgs.messages):
        if m.malformed or n % every != 3:
            continue
        variant, code = VARIANTS[k % len(VARIANTS)]
        k += 1
        cid, raw = variant(m, n)
        msgs.messages[n] = dataclasses.replace(m, control_id=cid, raw=raw, expect_code=code)
    return msgs


def _publish(world: World, messages: list[Sent], unfit: set[str]) -> None:
    """Straight onto the bus; the envelopes of ``unfit`` carry an id and an adapter name too long to store."""
    assert world.bus is not None
    envs = [
        Envelope.build(
            m.raw,
            adapter="chaos-bus" + ("-" + "x" * 300 if m.control_id in unfit else ""),
            id=new_id() + "-" + "u" * 40 if m.control_id in unfit else None,
            mapping="hl7v2",
            content_type="application/hl7-v2",
            charset="iso-8859-1",
            source_system="chaos",
        )
        for m in messages
    ]
    for i in range(0, len(envs), 200):
        world.bus.publish(envs[i : i + 200])


def poison(opts: Options) -> Result:
    """See the module docstring."""
    res = Result("poison envelopes on PostgreSQL")
    if (why := adapter_available("adapters.hl7_file")) is not None:
        res.skipped = why
        return res
    msgs = poison_set("po", max(200, opts.messages // 4))
    by_file, by_bus = msgs.messages[0::2], msgs.messages[1::2]
    wide = _unfit_metadata(msgs, by_bus)
    with World("poison", opts.keep) as w:
        inbox = w.dir / "in"
        inbox.mkdir()
        cfg = w.config("engine.yaml", adapters={"lab-files": file_adapter(inbox, opts.stable_seconds)}, workers=2)
        engine = w.spawn("engine", cfg)
        worker = w.spawn("worker", w.config("worker.yaml"), "--no-adapters")
        w.wait_started(engine, 60, FILE_STARTED)
        w.wait_started(worker, 60)
        drop_files(inbox, by_file, per_file=20)
        _publish(w, by_bus, wide)
        if not wait_for(all_arrived(w, msgs), 120):
            res.errors.append("not every message arrived (journal or dead letter) while the engine ran")
        _check_stop(res, w, (engine, worker))
        _note(res, msgs, wide)
        return finish(w, res, msgs, dirs=(inbox,))


def _unfit_metadata(msgs: MessageSet, by_bus: list[Sent]) -> set[str]:
    """Pick one in 50 well-formed messages of the bus half (3 at least) to travel in envelopes whose metadata
    does not fit its columns, spread over the batches; they must be journaled all the same."""
    fine = [m for m in by_bus if not m.malformed]
    step = max(1, len(fine) // max(3, len(by_bus) // 50))
    return {m.control_id for m in fine[5::step]}


def _check_stop(res: Result, w: World, procs: tuple[Proc, ...]) -> None:
    """Each engine process alive until now, no service crashed, and a clean stop (exit 0) on SIGTERM."""
    for p in procs:
        if not p.alive():
            res.errors.append(f"{p.name} died")
            continue
        code = p.term(30.0)
        if code != 0:
            res.errors.append(f"{p.name} exited {code} on SIGTERM (not clean)")
    crashed = sum(p.log.read_text("utf-8", "replace").count("service.crashed") for p in w.procs)
    if crashed:
        res.errors.append(f"{crashed} service crash(es) logged")


def _note(res: Result, msgs: MessageSet, unfit: set[str]) -> None:
    dead = sum(1 for m in msgs.messages if m.expect_code == NOT_STORABLE)
    msh3 = sum(1 for m in msgs.messages if b"CHAOS\x00LAB" in m.raw)
    res.notes.append(
        f"poison: {dead} {NOT_STORABLE} ({msh3} of them with NUL in MSH-3 only); {len(unfit)} with "
        "an id and an adapter name over their columns (all must be journaled)"
    )
