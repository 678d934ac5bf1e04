"""Svarrapport fidelity: report, requisition, specimens, parties, several codes, comments, dates, isolate links,
and keys that let a retraction or a final result replace what it should."""

from __future__ import annotations

from engine import ids
from engine.model import PartyId, RecordStatus
from mappings.kith.svarrapport import normalise_id
from tests.unit.kith.helpers import KITH, mapped, records

FIDELITY = "synthetic_svarrapport_v1.4_fidelity.xml"
SYNTH = "synthetic_svarrapport_v1.4.xml"
MICRO = "sarepta_svarrapport-v1.4_mikrobiologi_dyrkning_ny.xml"
PATO = "sarepta_svarrapport-v1.4_patologi_histologi_ny.xml"


def by_code(raw: str | bytes) -> dict[str, object]:
    return {o.code.code: o for o in records(mapped(raw), "observation")}


def test_report_groups_results_with_its_requisition_specimens_and_parties() -> None:
    result = mapped(FIDELITY)
    (report,) = records(result, "report")
    obs = records(result, "observation")
    (req,) = records(result, "requisition")
    specimens = records(result, "specimen")
    assert (report.category, report.code.code, report.report_id) == ("lab", "CLIN", "R-2024-000417")
    assert report.issued.isoformat() == "2024-05-02T14:09:00+02:00"
    assert report.comments == ("Prøven var lett hemolytisk.",)
    assert report.result_keys == tuple(o.key for o in obs)
    assert report.specimen_keys == tuple(s.key for s in specimens) and report.requisition_key == req.key
    assert (report.attachments[0].content_type, report.attachments[0].description) == (
        "application/pdf",
        "Kumulativ rapport",
    )
    assert all(o.report_key == report.key and o.requisition_key == req.key for o in obs)


def test_parties_lab_gp_office_gp_and_approver_with_national_ids() -> None:
    (report,) = records(mapped(FIDELITY), "report")
    parties = {(p.role, p.name): p for p in report.parties}
    lab = parties[("performer", "Medisinsk biokjemi")]
    assert (
        lab.ids == (PartyId(system=ids.OID_HER, value="8800002"),) and lab.organization == "Syntetisk Laboratorium AS"
    )
    gp = parties[("requester", "Kari Doktor")]  # Requester by HER-id and ResponsibleHcp by HPR: one practitioner
    assert set(gp.ids) == {PartyId(system=ids.OID_HER, value="8800011"), PartyId(system=ids.OID_HPR, value="9990011")}
    assert parties[("approver", "Anne Godkjenner")].ids == (PartyId(system=ids.OID_HPR, value="9990033"),)
    assert parties[("requester", "Syntetisk legekontor")].kind == "organization"


def test_urgent_requisition_with_reason_codes_and_date_only_request() -> None:
    (req,) = records(mapped(FIDELITY), "requisition")
    assert (req.placer_id, req.filler_id) == ("REQ-55120", "L-88120")
    assert (req.priority, req.priority_code.code) == ("urgent", "OHJELP")
    assert req.requested_date.isoformat() == "2024-05-02" and req.requested_at is None
    assert req.reason_codes[0].code == "K74" and "Brystsmerter" in req.reason


def test_specimens_with_site_comments_received_and_date_only_collection() -> None:
    s1, s2 = records(mapped(FIDELITY), "specimen")
    assert (s1.sample_id, s1.specimen_type.code, s1.body_site_text) == ("S-1", "P", "Venstre albue")
    assert s1.comments == ("Lett hemolyse", "Tatt etter 10 min hvile.")
    assert s1.received_at.isoformat() == "2024-05-02T09:30:00+02:00"
    assert s2.collected_date.isoformat() == "2024-04-30" and s2.collected_at is None


def test_every_code_original_text_comment_and_times_of_a_result() -> None:
    obs = by_code(FIDELITY)
    tnt = obs["NPU27310"]
    assert [c.code for c in tnt.alt_codes] == ["S-TNT"] and tnt.code_text == "hs-TnT"
    assert tnt.comments == ("Kontrolleres om 3 timer.",) and tnt.value_text is None and tnt.value_num == 52
    assert tnt.analysed_at.isoformat() == "2024-05-02T09:55:00+02:00"
    assert tnt.approved_at.isoformat() == "2024-05-02T10:02:00+02:00"
    assert tnt.issued.isoformat() == "2024-05-02T10:05:00+02:00"
    assert tnt.specimen_key.endswith(":specimen:S-1")
    assert {(p.role, p.name) for p in tnt.parties} == {("responsible", "Per Lab")}  # the lab: on the report
    assert tnt.performer == "Syntetisk Laboratorium AS, Medisinsk biokjemi"


def test_date_only_values_are_dates_never_midnight() -> None:
    lmp = by_code(FIDELITY)["NOR99999"]
    assert (lmp.value_type, lmp.value_date.isoformat(), lmp.value_text) == ("DT", "2024-04-30", None)
    assert lmp.effective_date.isoformat() == "2024-04-30" and lmp.effective_time is None
    assert lmp.analysed_at is None  # InvDate is a date only


def test_isolate_links_quantities_and_resistance_rows_to_their_culture() -> None:
    obs = {o.key.rsplit(":", 1)[-1]: o for o in records(mapped(MICRO), "observation")}
    isolate = obs["1"]  # key suffix item:1
    assert obs["1/Mengde"].derived_from == (isolate.key,)
    assert obs["1/Mengde"].specimen_key == isolate.specimen_key is not None
    resistance = [o for o in records(mapped(MICRO), "observation") if ":ref:" in o.key]
    assert len(resistance) == 7 and all(o.derived_from for o in resistance)
    amp = next(o for o in records(mapped(MICRO), "observation") if o.key.endswith("ref:1/NPU54371"))
    assert amp.derived_from == (isolate.key,)


def test_pathology_conclusion_keeps_every_snomed_code() -> None:
    raw = (
        (KITH / PATO)
        .read_bytes()
        .replace(
            b"\t\t\t\t<!-- Her kommer de aktuelle delsvarene -->",
            b"""<ResultItem><TextResult><Heading V="DIAG" DN="Diagnose"/>
<TextResultValue>Hud, biopsi: ulcerasjon med akutt betennelse.</TextResultValue>
<TextCode V="T02000" S="2.16.578.1.12.4.1.1.7010" DN="Hud"/>
<TextCode V="M38000" S="2.16.578.1.12.4.1.1.7010" DN="Ulcus"/>
<TextCode V="M41000" S="2.16.578.1.12.4.1.1.7010" DN="Akutt betennelse"/>
</TextResult></ResultItem>""",
        )
    )
    (report,) = records(mapped(raw), "report")
    assert report.category == "pathology" and "ulcerasjon" in report.conclusion
    assert [c.code for c in report.conclusion_codes] == ["T02000", "M38000", "M41000"]


def test_item_ids_are_normalised_the_same_way_in_every_message() -> None:
    assert normalise_id(" 0a 12") == normalise_id("A12") == "A12"
    assert normalise_id("000") == "000"  # an id of zeros keeps them: it has nothing else


def test_a_cancellation_with_a_typo_in_the_isolate_id_retracts_the_original() -> None:
    original = {o.key for o in records(mapped(MICRO), "observation")}
    raw = (KITH / MICRO).read_bytes()
    cancel = raw.replace(b'<ServType V="N" DN="Ny"/>', b'<ServType V="C" DN="Kansellering"/>', 1)
    cancel = cancel.replace(b"<IdResultItem>1</IdResultItem>", b"<IdResultItem> 01 </IdResultItem>")
    cancelled = records(mapped(cancel), "observation")
    assert {o.key for o in cancelled} == original
    assert {o.status for o in cancelled} == {RecordStatus.CANCELLED}


def test_a_chemistry_retraction_with_a_typo_in_the_item_id_retracts_the_original() -> None:
    raw = (KITH / SYNTH).read_bytes()
    typo = raw.replace(b"<IdResultItem>900003</IdResultItem>", b"<IdResultItem>0900003 </IdResultItem>")
    typo = typo.replace(
        b'<StatusInvestigation V="3" DN="Endelig"/>\n\t\t\t\t<RefAnalysedSubject>2',
        b'<StatusInvestigation V="14"/>\n\t\t\t\t<RefAnalysedSubject>2',
        1,
    )
    assert by_code(typo)["NPU19748"].key == by_code(SYNTH)["NPU19748"].key
    assert by_code(typo)["NPU19748"].status is RecordStatus.CANCELLED


def test_a_pending_item_without_id_is_replaced_by_the_final_result() -> None:
    raw = (KITH / SYNTH).read_bytes()
    pending = raw.replace(b'<Status V="F" DN="Endelig rapport"/>', b'<Status V="P"/>')
    pending = pending.replace(
        b'<IdResultItem>900001</IdResultItem>\n\t\t\t\t<StatusInvestigation V="3" DN="Endelig"/>',
        b'<StatusInvestigation V="15" DN="I prosess"/>',
    )
    pending = pending.replace(b'<NumResultValue V="12.4" U="10^9 /L"/>', b'<NumResultValue V="" U="10^9 /L"/>')
    before, after = by_code(pending)["NPU02593"], by_code(SYNTH)["NPU02593"]
    assert before.status is RecordStatus.PRELIMINARY and after.status is RecordStatus.FINAL
    assert before.key == after.key


def test_inside_msghead_the_report_names_the_msghead_sender_and_recipient() -> None:
    dialog = (KITH / "sarepta_dialogmelding-v1.0_foresporsel.xml").read_text(encoding="utf-8")
    body = (KITH / FIDELITY).read_text(encoding="utf-8").split("?>", 1)[1]
    head, tail = dialog.split("<Content>")[0], dialog.split("</Content>")[1]
    result = mapped(
        (head.replace("DIALOG_FORESPORSEL", "SVAR_LAB") + "<Content>" + body + "</Content>" + tail).encode()
    )
    (report,) = records(result, "report")
    roles = {p.role for p in report.parties}
    assert {"sender", "recipient", "performer", "requester", "approver"} <= roles
    assert all(p.role != "sender" for o in records(result, "observation") for p in o.parties or ())
