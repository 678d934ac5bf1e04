"""A lab's preliminary, partial, final, corrected and retracted reports in any order and with repeats give one
journal, and it shows the clinically latest state (HL7 v2.5 ORU^R01 and KITH Svarrapport v1.4, both databases).

Messages go the worker's way: :class:`engine.worker.Mapper` on an envelope, then
:meth:`engine.store.Store.commit_batch`; the journal is :func:`engine.journal_view.load_journal`, as
``enjournal journal`` shows it. The sequences are in :mod:`tests.lab_sequences`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.envelope import Envelope
from engine.journal_view import load_journal
from engine.store import Store
from engine.store import schema as s
from engine.worker import Mapper
from tests import lab_sequences as lab
from tests.helpers import fnr
from tests.integration.test_pipeline import _drain, _runtime

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

PATIENT = fnr(41)
FORMATS = ("hl7v2", "kith")
NewStore = Callable[[], Store]


@pytest.fixture
def new_store(store_url: str) -> Iterator[NewStore]:
    """A factory of empty stores on both databases: one store per test, emptied for every call (and its
    cache of stored identity edges forgotten), so read a store before asking for the next."""
    store = Store(store_url)
    tables = [t for t in reversed(s.metadata.sorted_tables) if t is not s.schema_migrations]

    def make() -> Store:
        with store.engine.begin() as c:
            for t in tables:  # a few rows: DELETE is cheaper than PostgreSQL's TRUNCATE
                c.execute(t.delete())
        store._edges = type(store._edges)()
        return store

    yield make
    store.close()


def _raw(fmt: str, m: lab.LabMessage, retract: str, head_time: bool) -> bytes:
    """``retract``: OBX-11 of a retracted analysis (X, D) or how a Svarrapport marks it (C, 14); ``head_time``:
    the stage time only in the message head (MSH-7, GenDate)."""
    if fmt == "hl7v2":
        return lab.hl7_message(m, PATIENT, retract, msh_time_only=head_time)
    return lab.kith_message(m, PATIENT, retract, gen_time_only=head_time)


def _envelope(fmt: str, m: lab.LabMessage, raw: bytes) -> Envelope:
    """A new envelope per delivery, as an adapter makes one for a message received again."""
    dedup = f"HL7|LABSYS|{lab.HL7_FACILITY}|{m.index}" if fmt == "hl7v2" else f"KITH|{lab.LAB_HER}|{m.index}"
    return Envelope.build(
        raw,
        adapter="lab",
        mapping=fmt,
        content_type="text/plain" if fmt == "hl7v2" else "application/xml",
        dedup_key=dedup,
    )


def ingest(
    store: Store,
    fmt: str,
    order: list[lab.LabMessage],
    batch: int = 1,
    retract: str | None = None,
    head_time: bool = False,
) -> None:
    """Map and commit ``order`` in batches of ``batch``, each message in a new envelope."""
    mapper = Mapper()
    retract = retract or ("X" if fmt == "hl7v2" else "C")
    outcomes = [mapper(_envelope(fmt, m, _raw(fmt, m, retract, head_time))) for m in order]
    assert [o.reason_code for o in outcomes if o.dead] == []
    for i in range(0, len(outcomes), batch):
        store.commit_batch(outcomes[i : i + batch])


def journal(store: Store) -> list[dict[str, Any]]:
    """The current records as ``enjournal journal`` shows them, without the envelope id: a version is credited
    to the first envelope that brought it, and the same content can come in several messages (a pending item
    sent twice in one second) or in a repeated delivery (a new envelope)."""
    view = load_journal(store, PATIENT)
    assert view is not None
    return [{k: v for k, v in r.items() if k != "envelope_id"} for r in view.to_json()["records"]]


def clinical(
    records: list[dict[str, Any]], fmt: str = "kith"
) -> tuple[str | None, dict[str, list[tuple[str, float | None]]]]:
    """(report status: KITH's, {analysis code: [(status, value) of each current record]}) of a journal."""
    report = next((r["status"] for r in records if r["kind"] == "report"), None) if fmt == "kith" else None
    items: dict[str, list[tuple[str, float | None]]] = {}
    for r in records:
        if r["kind"] == "observation":
            c = r["content"]
            value = None if r["status"] == "cancelled" else c.get("value_num")
            items.setdefault(c["code"]["code"], []).append((r["status"], value))
    return report, items


def expected(fmt: str, seq: list[lab.LabMessage]) -> tuple[str | None, dict[str, list[tuple[str, float | None]]]]:
    report, items = lab.expected_state(seq)
    return (report if fmt == "kith" else None), {code: [state] for code, state in items.items()}


sequences = st.fixed_dictionaries(
    {
        "fmt": st.sampled_from(FORMATS),
        "stages": st.lists(st.sampled_from(lab.STAGES), min_size=1, unique=True),
        "same_second": st.frozensets(st.sampled_from(lab.STAGES)),
        "retract": st.sampled_from([0, 1]),
        "pending_sent": st.booleans(),
        "cancel_items": st.booleans(),
        "head_time": st.booleans(),
        "seed": st.integers(0, 2**32 - 1),
        "repeats": st.integers(0, 3),
        "batch": st.integers(1, 4),
    }
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=sequences)
def test_any_order_and_repetition_gives_the_clinically_latest_journal(new_store: NewStore, case: dict) -> None:
    fmt = case["fmt"]
    seq = lab.lab_sequence(
        case["stages"],
        case["same_second"],
        pending_sent=case["pending_sent"],
        cancel_items=case["cancel_items"] or fmt == "hl7v2",  # HL7 without OBX: see SENDER_SHAPES
    )
    retract = ("X", "D") if fmt == "hl7v2" else ("C", "14")
    rnd = random.Random(case["seed"])
    shuffled = seq + [rnd.choice(seq) for _ in range(case["repeats"])]
    rnd.shuffle(shuffled)
    in_order = new_store()
    ingest(in_order, fmt, seq, retract=retract[case["retract"]], head_time=case["head_time"])
    want = journal(in_order)
    permuted = new_store()  # the same store, emptied
    ingest(permuted, fmt, shuffled, case["batch"], retract[case["retract"]], case["head_time"])
    got = journal(permuted)
    assert got == want
    assert clinical(got, fmt) == expected(fmt, seq)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_stage_in_reverse_order(new_store: NewStore, fmt: str) -> None:
    seq = lab.lab_sequence(lab.STAGES[:-1])  # without the whole cancellation: the retraction stays visible
    store = new_store()
    ingest(store, fmt, seq[::-1] + seq)
    report, items = clinical(journal(store), fmt)
    hb, leuko, crp, na = (a.code for a in lab.ANALYSES)
    assert items == {
        hb: [("corrected", 12.0)],
        leuko: [("final", 7.2)],
        crp: [("cancelled", None)],
        na: [("final", 139.0)],
    }
    assert report == (None if fmt == "hl7v2" else "corrected")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("first", "second"), [("preliminary", "final"), ("final", "corrected"), ("final", "retract")])
def test_a_later_status_in_the_same_second_wins(new_store: NewStore, fmt: str, first: str, second: str) -> None:
    """Labs stamp to the second: a final sent in the second of its preliminary (and a correction or retraction
    in the second of the final) must still be what the journal shows, whichever arrives first."""
    seq = lab.lab_sequence([first, second], same_second=frozenset({second}))
    assert seq[0].time == seq[1].time
    for order in (seq, seq[::-1]):
        store = new_store()
        ingest(store, fmt, order)
        assert clinical(journal(store), fmt) == expected(fmt, seq)


def _shape(fmt: str, name: str, defect: str | None = None, **shape: Any) -> Any:
    """A case of :func:`test_retractions_as_senders_send_them`; ``defect``: why it fails today (strict xfail)."""
    marks = [pytest.mark.xfail(strict=True, reason=defect)] if defect else []
    return pytest.param(fmt, shape, marks=marks, id=f"{fmt}-{name}")  # shape: lab_sequence's, and ingest's retract


_ORIGINAL = lab.ANALYSES[lab.RETRACTED].item_id
_TYPO = _ORIGINAL[:-2] + _ORIGINAL[-1] + _ORIGINAL[-2]  # two digits swapped, no other item's id
SENDER_SHAPES = [
    _shape(
        "kith",
        "retraction-with-mistyped-item-id",
        stages=["final", "retract"],
        retract_id=_TYPO,
    ),
    _shape(
        "kith",
        "pending-item-without-id",
        stages=["preliminary", "final"],
        pending_without_id=True,
    ),
    _shape(
        "hl7v2",
        "order-cancelled-without-obx",
        stages=["final", "cancel"],
        cancel_items=False,
    ),
    _shape("kith", "cancelled-without-items", stages=["final", "cancel"], cancel_items=False),
    _shape("kith", "retracted-by-status-14", stages=["final", "retract"], retract="14"),
    _shape("hl7v2", "retracted-by-obx-11-d", stages=["final", "retract"], retract="D"),
]


@pytest.mark.parametrize(("fmt", "shape"), SENDER_SHAPES)
def test_retractions_as_senders_send_them(new_store: NewStore, fmt: str, shape: dict[str, Any]) -> None:
    """Retractions in shapes real senders produce leave the clinically latest state."""
    assert _TYPO not in {a.item_id for a in lab.ANALYSES}
    retract = shape.get("retract")
    seq = lab.lab_sequence(**{k: v for k, v in shape.items() if k != "retract"})
    store = new_store()
    ingest(store, fmt, seq, retract=retract)
    assert clinical(journal(store), fmt) == expected(fmt, seq)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_bus_path_gives_the_same_journal(
    new_store: NewStore, store_url: str, tmp_path: Path, amqp_names: dict[str, str], rabbit_url: str, fmt: str
) -> None:
    """Every stage, newest first and then again in order, published to RabbitMQ and consumed by the engine's
    worker: the journal of the direct path."""
    seq = lab.lab_sequence(lab.STAGES, same_second=frozenset({"final"}), cancel_items=fmt == "hl7v2")
    order = seq[::-1] + seq
    direct = new_store()
    ingest(direct, fmt, order)
    want = journal(direct)
    new_store()  # empty again, for the engine's own store on the same database
    rt = _runtime("rabbitmq", tmp_path, store_url, amqp_names)
    try:
        retract = "X" if fmt == "hl7v2" else "C"
        rt.bus.publish([_envelope(fmt, m, _raw(fmt, m, retract, False)) for m in order])
        _drain(rt)
        assert rt.store.dead_letters() == []
        assert journal(rt.store) == want
        assert clinical(want, fmt) == expected(fmt, seq)
    finally:
        rt.bus.delete_topology()  # type: ignore[attr-defined]
        rt.close()
