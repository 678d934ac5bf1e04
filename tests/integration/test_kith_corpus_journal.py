"""The whole KITH corpus imported into one journal: one citizen per real person (both databases)."""

from __future__ import annotations

import sqlalchemy as sa

from engine.envelope import Envelope
from engine.journal_view import load_journal
from engine.store import Store
from engine.worker import Mapper
from tests.conftest import FIXTURES

LINE_DANSER = "13116900216"  # official KITH test person (fictitious)
ROLAND_GUNDERSEN = "15076500565"  # PLO test person (fictitious)


def test_corpus_gives_one_citizen_per_person(store_url: str) -> None:
    store = Store(store_url)
    mapper = Mapper()
    files = sorted((FIXTURES / "kith").glob("sarepta_*.xml"))
    outcomes = [
        mapper(
            Envelope.build(
                f.read_bytes(),
                adapter="kith",
                mapping="kith",
                content_type="application/xml",
                attributes={"file": f.name},
            )
        )
        for f in files
    ]
    rejected = {o.envelope.attributes["file"]: o.reason_code for o in outcomes if o.dead}
    assert rejected == {"sarepta_apprec-v1.0_npr_eksempel.xml": "KITH_NOT_CLINICAL"}
    store.commit_batch(outcomes)
    store.commit_batch(outcomes)  # the same corpus again changes nothing
    with store.engine.connect() as c:
        subjects = [r[0] for r in c.execute(sa.text("SELECT DISTINCT subject_key FROM record_versions"))]
    components = {store.citizen(s).component for s in subjects}
    line, roland = store.citizen(LINE_DANSER), store.citizen(ROLAND_GUNDERSEN)
    assert line is not None and roland is not None
    assert components == {line.component, roland.component}
    assert line.conflicts == () and roland.conflicts == ()
    envelopes = {o.envelope.id: o.envelope.attributes["file"] for o in outcomes}
    journals = {}
    for who in (LINE_DANSER, ROLAND_GUNDERSEN):
        view = load_journal(store, who)
        assert view is not None
        journals[who] = {envelopes[r["envelope_id"]] for r in view.current + view.history}
    line_files = journals[LINE_DANSER]
    assert not line_files & journals[ROLAND_GUNDERSEN]
    # the v1.4 "ny" report is the v1.3 one in a newer schema: identical records, stored once (from v1.3)
    same_as_v13 = {"sarepta_svarrapport-v1.4_biokjemi_ny.xml"}
    assert line_files | journals[ROLAND_GUNDERSEN] == {f.name for f in files} - set(rejected) - same_as_v13
    for family in (
        "svarrapport-v1.3",
        "svarrapport-v1.4_biokjemi",
        "epikrise",
        "henvisning",
        "dialogmelding",
        "rekvisisjon",
    ):
        assert any(family in f for f in line_files), family
    kinds = {r["kind"] for r in load_journal(store, LINE_DANSER).current}  # type: ignore[union-attr]
    assert {"observation", "document", "condition", "referral", "person", "medication"} <= kinds
    store.close()
