"""Rekvisisjon -> a Requisition (ids, priority, requested time, reason, parties) and its Specimens."""

from __future__ import annotations

from engine import ids
from engine.model import PartyId, RecordStatus
from tests.unit.kith.helpers import KITH, mapped, records

REK = "sarepta_rekvisisjon-v1.6_lab_ny.xml"


def test_rekvisisjon_is_a_requisition_with_every_requested_code() -> None:
    (order,) = records(mapped(REK), "requisition")
    assert order.key == "kith:rekvisisjon:HER:91096:79209fb0-0b3a-11e8-b566-0800200c9a66"
    assert order.placer_id == "79209fb0-0b3a-11e8-b566-0800200c9a66"
    assert len(order.codes) == 14 and order.codes[0].code == "NPU03429"
    assert (order.priority, order.priority_code.code) == ("routine", "N")
    assert order.requested_at.isoformat() == "2018-02-06T08:51:11+01:00"


def test_rekvisisjon_names_requester_gp_and_the_lab() -> None:
    (order,) = records(mapped(REK), "requisition")
    roles = {(p.role, p.kind, p.name) for p in order.parties}
    assert ("requester", "organization", "Kattskinnet legesenter") in roles
    assert ("performer", "organization", "Medisinsk biokjemi") in roles
    gp = next(p for p in order.parties if p.kind == "practitioner")
    assert gp.role == "requester" and gp.ids == (PartyId(system=ids.OID_HER, value="91101"),)


def test_rekvisisjon_specimens_one_per_sample() -> None:
    specimens = records(mapped(REK), "specimen")
    assert len(specimens) == len({s.sample_id for s in specimens}) == 6
    by_id = {s.sample_id: s for s in specimens}
    serum = by_id["f7737880-0b4c-11e8-b566-0800200c9a66"]
    assert serum.specimen_type.code == "S" and serum.collected_at.isoformat() == "2018-02-06T08:52:15+01:00"
    blood = by_id["67796679"]
    assert (blood.specimen_type.code, blood.specimen_type.display) == ("UNSPECIFIED", "Blod")
    assert blood.collected_date.isoformat() == "2017-01-10" and blood.collected_at is None


def test_urgent_rekvisisjon_keeps_its_code_and_a_cancellation_cancels() -> None:
    raw = (
        (KITH / REK)
        .read_bytes()
        .replace(b'<RequestedPrioReport V="N" DN="Normal"/>', b'<RequestedPrioReport V="OHJELP" DN="Akutt"/>')
    )
    (order,) = records(mapped(raw), "requisition")
    assert (order.priority, order.priority_code.code, order.priority_code.display) == ("urgent", "OHJELP", "Akutt")
    cancelled = mapped(
        raw.replace(b'<ServType V="N" DN="Ny"/>\n\t\t<IssueDate', b'<ServType V="C"/>\n\t\t<IssueDate', 1)
    )
    assert {r.status for r in cancelled.records if r.kind != "person"} == {RecordStatus.CANCELLED}
