"""Svarrapport behaviour: corrections and cancellations share keys, nested items, values, units, status."""

from __future__ import annotations

from engine.model import RecordStatus
from tests.unit.kith.helpers import KITH, mapped, records

NY = "sarepta_svarrapport-v1.4_biokjemi_ny.xml"
ENDRING = "sarepta_svarrapport-v1.4_biokjemi_endring.xml"
KANSELLERING = "sarepta_svarrapport-v1.4_biokjemi_kansellering.xml"


def by_code(name: str) -> dict[str, object]:
    return {o.code.code: o for o in records(mapped(name), "observation")}


def test_correction_supersedes_with_the_same_keys_and_a_later_event_time() -> None:
    ny, endring = by_code(NY), by_code(ENDRING)
    assert {o.key for o in ny.values()} == {o.key for o in endring.values()}
    hb_ny, hb_m = ny["NOR05172"], endring["NOR05172"]
    assert (hb_ny.value_num, hb_m.value_num, hb_m.status) == (15.0, 12.0, RecordStatus.CORRECTED)
    assert hb_m.event_time > hb_ny.event_time
    assert endring["NPU19767"].status is RecordStatus.FINAL


def test_item_cancellation_cancels_the_same_key() -> None:
    ft4 = by_code(ENDRING)["NOR05863"]
    assert ft4.key == by_code(NY)["NOR05863"].key
    assert ft4.status is RecordStatus.CANCELLED and ft4.value_num is None
    assert ft4.value_text is None and "trukket tilbake" in " ".join(ft4.comments or ())


def test_report_cancellation_cancels_the_report_key() -> None:
    (doc_ny,) = records(mapped(NY), "report")
    (doc_c,) = records(mapped(KANSELLERING), "report")
    assert doc_c.key == doc_ny.key and doc_c.status is RecordStatus.CANCELLED
    assert doc_c.event_time > doc_ny.event_time
    assert all(o.report_id == doc_ny.key and o.key.startswith(doc_ny.key + ":") for o in by_code(NY).values())


def test_versions_1_3_and_1_4_of_the_same_report_give_the_same_keys() -> None:
    old = by_code("sarepta_svarrapport-v1.3_biokjemi_ny.xml")
    assert {o.key for o in old.values()} == {o.key for o in by_code(NY).values()}


def test_numeric_values_units_ranges_and_flags() -> None:
    obs = by_code(NY)
    leuk, inr, lh, ddimer = obs["NPU02593"], obs["NPU01685"], obs["NOR05857"], obs["NPU19767"]
    assert (leuk.value_num, leuk.unit, leuk.ref_low, leuk.ref_high) == (11.0, "10^9/L", 3.5, 11.0)
    assert leuk.reference_range == "3,5 - 11,0"
    assert (inr.unit, inr.ref_low, inr.ref_high) == (None, None, 1.2)
    assert lh.abnormal_flag == "H" and ddimer.abnormal_flag is None
    assert leuk.specimen.code == "B" and leuk.effective_time.isoformat() == "2017-09-20T07:57:00+02:00"


def test_synthetic_report_comparator_units_and_advisory_code_system() -> None:
    obs = by_code("synthetic_svarrapport_v1.4.xml")
    crp, trc, inr = obs["NPU19748"], obs["NPU03568"], obs["NPU01685"]
    assert (crp.value_num, crp.comparator, crp.unit) == (0.6, "<", "mg/L")
    assert (trc.unit, trc.abnormal_flag) == ("10^9/L", "L")
    assert inr.code.system == "1.23.456.7.89"  # a wrong S is kept, never a reason to reject


def test_microbiology_isolates_and_resistance_rows_have_stable_unique_keys() -> None:
    result = mapped("sarepta_svarrapport-v1.4_mikrobiologi_dyrkning_ny.xml")
    obs = records(result, "observation")
    keys = [o.key for o in obs]
    assert len(keys) == len(set(keys)) == 11  # 2 isolates, 2 quantities, 5 + 2 resistance rows
    suffixes = {o.key[len(o.report_id) + 1 :] for o in obs}
    assert {"item:1", "item:1/Mengde", "ref:1/NPU54371", "ref:2/NPU54371"} <= suffixes
    amp = next(o for o in obs if o.key.endswith("ref:1/NPU54371"))
    assert (amp.value_type, amp.value_code.code, amp.value_code.display) == ("CE", "R", "Resistent")
    assert keys == [
        o.key for o in records(mapped("sarepta_svarrapport-v1.4_mikrobiologi_dyrkning_ny.xml"), "observation")
    ]


def test_pathology_preliminary_report_and_nested_text_results() -> None:
    result = mapped("sarepta_svarrapport-v1.4_patologi_histologi_ny.xml")
    obs = records(result, "observation")
    assert {o.status for o in obs} == {RecordStatus.PRELIMINARY}
    assert [o.code.code for o in obs] == ["A", "FU", "VU", "MA", "MI"]
    assert "\n" in obs[1].value_text and obs[0].key + "/FU" == obs[1].key
    (doc,) = records(result, "report")
    (req,) = records(result, "requisition")
    assert doc.status is RecordStatus.PRELIMINARY and "Erythema multiforme" in (req.reason or "")


def test_an_item_that_cannot_be_mapped_becomes_a_positional_warning(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from mappings.kith import svarrapport

    real = svarrapport._value
    calls = {"n": 0}

    def flaky(item):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise ValueError("unmappable")
        return real(item)

    monkeypatch.setattr(svarrapport, "_value", flaky)
    result = mapped("synthetic_svarrapport_v1.4.xml")
    assert result.warnings == ("KITH_PART_UNMAPPED:ResultItem[3]",)
    assert len(records(result, "observation")) == 3


def test_items_without_code_or_id_get_positional_keys() -> None:
    raw = (KITH / "synthetic_svarrapport_v1.4.xml").read_text(encoding="utf-8")
    raw = raw.replace(
        '<Investigation>\n\t\t\t\t\t<Id V="NPU01685" S="1.23.456.7.89" DN="P-INR"/>\n\t\t\t\t</Investigation>', ""
    )
    raw = raw.replace("<IdResultItem>900004</IdResultItem>", "")
    obs = records(mapped(raw.encode()), "observation")
    assert obs[-1].key.endswith(":item/#4") and obs[-1].code.code == "UNSPECIFIED"


def test_a_coded_element_without_a_code_value_gives_no_code_but_keeps_its_text() -> None:
    synth = (KITH / "synthetic_svarrapport_v1.4.xml").read_text(encoding="utf-8")
    raw = synth.replace(
        '<Id V="NPU02593" S="2.16.578.1.12.4.1.1.7280" DN="B-Leukocytter"/>',
        '<Id S="2.16.578.1.12.4.1.1.8212" OT="Identifikasjon"/>',
    )
    obs = records(mapped(raw.encode()), "observation")
    first = next(o for o in obs if o.key.endswith(":item:900001"))
    assert (first.code.code, first.code.system, first.code.display) == ("UNSPECIFIED", None, "Identifikasjon")
    assert all(o.code.code != "Identifikasjon" for o in obs)


def test_coding_needs_a_code_value() -> None:
    from lxml import etree

    from mappings.kith import common as c
    from mappings.kith.node import Node

    uncoded = Node(etree.fromstring('<Id S="2.16.578.1.12.4.1.1.8212" OT="Identifikasjon"/>'))
    coded = Node(etree.fromstring('<Id V="B-HB" S="2.16.578.1.12.4.1.1.8212" OT="Hemoglobin"/>'))
    assert c.coding(uncoded) is None
    assert c.uncoded(uncoded) == c.coding_or_text(uncoded)
    assert (c.coding_or_text(uncoded).code, c.coding_or_text(uncoded).display) == ("UNSPECIFIED", "Identifikasjon")
    assert c.uncoded(coded) is None and c.coding(coded).code == "B-HB"
