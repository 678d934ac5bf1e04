"""Epikrise, Henvisning, Dialogmelding, PLO and Rekvisisjon: the facts each family must carry."""

from __future__ import annotations

from engine.model import RecordStatus
from tests.unit.kith.helpers import mapped, records


def test_epikrise_document_stay_diagnoses_and_atc_without_spaces() -> None:
    result = mapped("sarepta_epikrise-v1.2_n.xml")
    (doc,), (stay,) = records(result, "document"), records(result, "encounter")
    assert doc.key.startswith("kith:epikrise:HER:91393:") and "Forløp og behandling:" in doc.text
    assert (stay.start.isoformat(), stay.end.isoformat()) == ("2017-04-27T09:00:10+02:00", "2017-05-04T09:20:12+02:00")
    assert stay.encounter_class == "inpatient"
    assert [(c.code.code, c.role) for c in records(result, "condition")] == [
        ("I330", "main"),
        ("E119", "secondary"),
        ("I252", "secondary"),
    ]
    furix = records(result, "medication")[0]
    assert (furix.code.code, furix.name, furix.dosage) == ("C03CA01", "Furix", "20 mg; 1 tabl. om morgenen")


def test_epikrise_cancellation_cancels_document_and_stay_keys() -> None:
    new, cancel = mapped("sarepta_epikrise-v1.2_n.xml"), mapped("sarepta_epikrise-v1.2_c.xml")
    for kind in ("document", "encounter"):
        (a,), (b,) = records(new, kind), records(cancel, kind)
        assert a.key == b.key and b.status is RecordStatus.CANCELLED and b.event_time > a.event_time


def test_epikrise_1_1_correction_status() -> None:
    (doc,) = records(mapped("sarepta_epikrise-v1.1_m.xml"), "document")
    assert doc.status is RecordStatus.CORRECTED and doc.doc_type.code == "EPIKRISE"


def test_henvisning_2_0_cancellation_shares_the_referral_key() -> None:
    (new,) = records(mapped("sarepta_henvisning-v2.0_ny_tilstand_ny.xml"), "referral")
    (cancel,) = records(mapped("sarepta_henvisning-v2.0_ny_tilstand_kansellering.xml"), "referral")
    assert new.key == cancel.key == "kith:henvisning:HER:91096:cf4efb50-3198-11e8-b566-0800200c9a66"
    assert (new.status, cancel.status) == (RecordStatus.FINAL, RecordStatus.CANCELLED)
    assert cancel.event_time > new.event_time and "fritt sykehusvalg" in cancel.reason
    assert [c.code for c in new.codes] == ["L88"] and new.service.code == "10"


def test_henvisning_1_1_referral_and_condition() -> None:
    result = mapped("sarepta_henvisning-v1.1_n.xml")
    (ref,), (cond,) = records(result, "referral"), records(result, "condition")
    assert ref.requester == "Rita Lin, Kattskinnet legesenter" and ref.priority == "Haster (elektiv)"
    assert cond.key == ref.key + ":dx:L88" and cond.code.system == "2.16.578.1.12.4.1.1.7170"


def test_dialog_threading() -> None:
    (question,) = records(mapped("sarepta_dialogmelding-v1.0_foresporsel.xml"), "document")
    (answer,) = records(mapped("sarepta_dialogmelding-v1.0_svar_foresporsel.xml"), "document")
    assert question.conversation_ref == answer.conversation_ref == answer.parent_ref
    assert question.parent_ref is None and answer.doc_type.code == "DIALOG_SVAR"
    (status,) = records(mapped("sarepta_dialogmelding-v1.1_status_henvisning.xml"), "document")
    assert (status.conversation_ref, status.parent_ref) == (
        "87ef6130-2d17-11e8-b566-0800200c9a66",
        "810200d0-2d17-11e8-b566-0800200c9a66",
    )
    assert status.title == "Innkalles til helsehjelp"


def test_plo_logistics_events_and_death() -> None:
    (admitted,) = records(mapped("sarepta_plo-v1.6_pasientlogistikk_innlagt_ny.xml"), "care_event")
    assert (admitted.event_code.code, admitted.event_code.system) == ("1", "2.16.578.1.12.4.1.1.9121")
    assert admitted.occurred_at.isoformat() == "2018-01-29T10:00:00+01:00"
    result = mapped("sarepta_plo-v1.6_pasientlogistikk_dodsfall_ny.xml")
    (dead,), (person,) = records(result, "care_event"), records(result, "person")
    assert dead.event_code.code == "13" and person.deceased_at == dead.occurred_at


def test_plo_reports_documents_diagnoses_and_medications() -> None:
    result = mapped("sarepta_plo-v1.6_utskrivningsrapport_ny.xml")
    (doc,) = records(result, "document")
    assert doc.doc_type.code == "UTSKRIVNINGSRAPPORT" and "Forløp og behandling:" in doc.text
    assert [(c.code.code, c.role) for c in records(result, "condition")] == [
        ("A46", "secondary"),
        ("I509", "secondary"),
    ]
    meds = {m.name: m for m in records(result, "medication")}
    assert meds["Marevan"].med_status == "Seponering" and meds["Burinex"].end_date is not None
    (main,) = records(mapped("sarepta_plo-v1.6_innleggelsesrapport_ny.xml"), "condition")
    assert (main.code.code, main.role) == ("I50", "main")


def test_rekvisisjon_is_a_lab_order_referral() -> None:
    (order,) = records(mapped("sarepta_rekvisisjon-v1.6_lab_ny.xml"), "referral")
    assert order.key == "kith:rekvisisjon:HER:91096:79209fb0-0b3a-11e8-b566-0800200c9a66"
    assert len(order.codes) == 14 and order.codes[0].code == "NPU03429" and order.service.code == "LAB"
