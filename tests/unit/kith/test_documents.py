"""Dialogmelding, Epikrise, Henvisning and PLO fidelity: parties (MsgHead and fk1), topics and note dates,
several codings, attachments decoded once, the Person's names and date-only values."""

from __future__ import annotations

import hashlib
from datetime import date

from engine import ids
from engine.model import AttachmentRef, Party
from mappings.kith import patient as pt
from tests.unit.kith.helpers import KITH, mapped, records

DIALOG = "synthetic_dialogmelding-v1.1_notater_vedlegg.xml"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _roles(parties: tuple[Party, ...] | None) -> dict[str, list[Party]]:
    out: dict[str, list[Party]] = {}
    for party in parties or ():
        out.setdefault(party.role, []).append(party)
    return out


def test_dialog_notes_keep_topic_codes_date_comment_and_author() -> None:
    first, second = records(mapped(DIALOG), "document")
    assert (first.key, second.key) == ("kith:dialog:HER:812345:notat-1", "kith:dialog:HER:812345:notat-2")
    assert first.topic == "Endret dosering av Marevan" and first.document_date == date(2026, 3, 1)
    assert [(k.system, k.code, k.display) for k in first.topic_codes] == [
        ("2.16.578.1.12.4.1.1.9069", "2", "Legemiddelendring"),
        (None, "UNSPECIFIED", "Identifikasjon"),  # a TemaKodet without V: its text, never a code
    ]
    assert first.comments == ("Ny INR om en uke.",) and second.comments is None
    assert second.topic is None and second.document_date == date(2026, 3, 2)
    (author,) = _roles(first.parties)["author"]
    assert (author.name, author.organization) == ("Kari Mellom Prøvelege", "Testby legesenter")
    assert author.ids[0].system == ids.OID_HPR and author.ids[0].value == "912345"  # leading zero dropped
    assert "gp" in _roles(first.parties) and "author" not in _roles(second.parties)


def test_msghead_sender_and_recipient_are_on_every_record() -> None:
    result = mapped(DIALOG)
    for record in result.records:
        roles = _roles(record.parties)
        sender_org = next(p for p in roles["sender"] if p.kind == "organization")
        assert {(i.system, i.value) for i in sender_org.ids} == {(ids.OID_HER, "812345"), (ids.OID_ENH, "974589095")}
        (recipient,) = roles["recipient"]
        assert (recipient.name, recipient.organization) == ("Hjemmetjenesten", "Testby kommune")
        assert recipient.ids[0].system == ids.OID_LOCAL_PREFIX + "HER:812345:LOK"
        assert recipient.organization_ids[0].system == ids.OID_HER
        gp = roles["gp"][0]
        assert gp.kind == "practitioner" and gp.organization_ids == (sender_org.ids[0], sender_org.ids[1])


def test_attachments_are_decoded_once_named_or_flagged() -> None:
    result = mapped(DIALOG)
    (data,) = result.attachments
    assert data.data == PDF and data.sha256 == hashlib.sha256(PDF).hexdigest()
    doc = records(result, "document")[0]
    pdf, broken, named = doc.attachments
    assert (pdf.content_type, pdf.size, pdf.sha256, pdf.description) == (
        "application/pdf",
        len(PDF),
        data.sha256,
        "INR-kurve",
    )
    assert broken == AttachmentRef.named("image/jpeg", "Anonymisert bilde")
    assert named == AttachmentRef.named("application/pdf", "Epikrise fra sykehus")
    assert "KITH_ATTACHMENT_UNDECODABLE" in doc.flags and "KITH_ATTACHMENT_UNDECODABLE" in result.warnings


def test_msghead_person_has_separate_middle_name_and_unpadded_birth_date() -> None:
    (person,) = records(mapped(DIALOG), "person")
    assert (person.family_name, person.given_name, person.middle_name) == ("Testesen", "Ola", "Syntetisk")
    assert person.birth_date == date(1991, 12, 4) and person.sex == "male" and not person.flags


def test_v1_name_is_split_into_family_given_and_middle() -> None:
    assert pt.split_name("Danser, Line Marie Sofie") == ("Danser", "Line", "Marie Sofie")
    assert pt.split_name("Danser, Line") == ("Danser", "Line", None)
    assert pt.split_name("Ukjent kvinne") == ("Ukjent kvinne", None, None)


def test_henvisning_1_1_person_middle_name_date_of_death_and_parties() -> None:
    raw = (KITH / "sarepta_henvisning-v1.1_n.xml").read_bytes()
    raw = raw.replace(b"<Name>Danser, Line</Name>", b'<Name>Danser, Line Mellom</Name><DateOfDeath V="2026-02-01"/>')
    result = mapped(raw)
    (person,) = records(result, "person")
    assert (person.given_name, person.middle_name) == ("Line", "Mellom")
    assert person.deceased_date == date(2026, 2, 1) and person.deceased_at is None
    (referral,) = records(result, "referral")
    roles = _roles(referral.parties)
    assert roles["requester"][0].name == "Kattskinnet legesenter"
    assert roles["performer"][0].name == "Ortopedisk kirurgi" and roles["performer"][0].ids[0].value == "90998"
    assert [p.ids[0].value for p in roles["gp"]] == ["9144889"]


def test_henvisning_2_0_referring_doctor_gp_and_interpreter_need() -> None:
    (referral,) = records(mapped("sarepta_henvisning-v2.0_ny_tilstand_ny.xml"), "referral")
    roles = _roles(referral.parties)
    assert [(p.name, p.ids[0].value) for p in roles["requester"]] == [("May Jones", "9144919")]
    assert [(p.name, p.ids[0].value) for p in roles["gp"]] == [("August September", "9144897")]
    assert "Tolkebehov:\nNORDSAMISK" in referral.reason


def test_epikrise_parties_further_codings_and_dates_of_a_diagnosis_and_a_drug() -> None:
    raw = (KITH / "sarepta_epikrise-v1.2_n.xml").read_bytes()
    old = b'V="E119" S="2.16.578.1.12.4.1.1.7110"/>\n\t\t\t\t\t</CodedDescr>'
    original = b' OT="Diabetes type 2 uten komplikasjoner"'
    extra = b'<CodedDescr><Concept V="E11.9" DN="Diabetes type 2" S="2.16.578.1.12.4.1.1.7170"/></CodedDescr>'
    assert old in raw
    raw = raw.replace(old, old.replace(b"/>", original + b"/>", 1) + extra)
    medb = b'DN="Legemiddelopplysning"/>'
    at = raw.index(medb, raw.index(b'DN="Furix"')) + len(medb)
    raw = raw[:at] + b'<StartDateTime V="2017-05-04"/><EndDateTime V="2017-06-01T08:00:00"/>' + raw[at:]
    raw = raw.replace(
        b'<Type V="B" DN="Bidiagnose"/>', b'<Type V="B" DN="Bidiagnose"/><StartDateTime V="1993-05-01"/>', 1
    )
    result = mapped(raw)
    dm = next(c for c in records(result, "condition") if c.code.code == "E119")
    assert [(k.system, k.code) for k in dm.alt_codes] == [("2.16.578.1.12.4.1.1.7170", "E119")]
    assert dm.text == "Diabetes mellitus; Diabetes type 2 uten komplikasjoner"
    assert dm.onset_date == date(1993, 5, 1) and dm.onset is None
    furix = next(m for m in records(result, "medication") if m.name == "Furix")
    assert furix.start_date == date(2017, 5, 4) and furix.end is not None and furix.end.hour == 8
    (doc,) = records(result, "document")
    roles = _roles(doc.parties)
    assert roles["author"][0].name == "Meldingsvalidering" and roles["author"][0].organization
    assert [p.ids[0].value for p in roles["responsible"]] == ["9144900"]
    assert [p.ids[0].value for p in roles["gp"]] == ["9144889"]
    assert "Henvisning:\nUtredning/behandling; 2017-04-20T10:15:02" in doc.text


def test_plo_dates_stay_dates_and_the_responsible_nurse_is_named() -> None:
    result = mapped("sarepta_plo-v1.6_innleggelsesrapport_ny.xml")
    burinex = next(m for m in records(result, "medication") if m.name == "Burinex")
    assert burinex.start_date == date(2017, 9, 1) and burinex.start is None
    assert burinex.comments == (
        "Pasienten har ikke svelgproblemer, men store tabletter må deles",
        "Legemiddeldosering inngår i multidose og informasjon er sendt til leverandør",
    )
    (doc,) = records(result, "document")
    (nurse,) = _roles(doc.parties)["responsible"]
    assert (nurse.name, nurse.ids[0].system) == ("Gunn Omsorg", ids.OID_HPR)
    assert "Kartlagt funksjon (IPLOS):\nSosial deltakelse: 3" in doc.text
    assert "Faste hjelpemidler:\nHøreapparat; Pacemaker" in doc.text
    assert "Hjelpemiddel:\nKrykker (Aktiv)" in doc.text
    assert _roles(doc.parties)["other"][0].ids[0].system == ids.OID_ENH


def test_plo_death_on_a_date_is_the_persons_date_of_death() -> None:
    result = mapped("sarepta_plo-v1.6_pasientlogistikk_dodsfall_ny.xml")
    (person,) = records(result, "person")
    assert person.deceased_date == date(2018, 2, 20) and person.deceased_at is None
    (event,) = [e for e in records(result, "care_event") if e.event_code.code == "13"]
    assert event.occurred_date == date(2018, 2, 20) and event.occurred_at is None


def test_a_msghead_with_two_payloads_decodes_its_attachment_once() -> None:
    raw = (KITH / DIALOG).read_bytes()
    first = raw.index(b"\t<Document>")
    end = raw.index(b"</Document>", first) + len(b"</Document>\n")
    twice = raw[:end] + raw[first:end].replace(b"notat-1", b"notat-3").replace(b"notat-2", b"notat-4") + raw[end:]
    result = mapped(twice)
    assert len(result.attachments) == 1 and len(records(result, "document")) == 4


def test_plo_medication_not_to_be_taken_with_others_is_a_comment() -> None:
    raw = (KITH / "sarepta_plo-v1.6_innleggelsesrapport_ny.xml").read_bytes()
    flag = b"<epj3:SkalIkkeTasSammenMedAnnetLegemiddel>false<"
    assert flag in raw
    changed = raw.replace(flag, flag.replace(b"false", b"true"), 1)
    meds = records(mapped(changed), "medication")
    warned = [m for m in meds if m.comments and "Skal ikke tas sammen med annet legemiddel" in m.comments]
    assert len(warned) == 1
    unchanged = {m.key: m.comments for m in records(mapped(raw), "medication")}
    assert all("Skal ikke tas sammen med annet legemiddel" not in (c or ()) for c in unchanged.values())


def test_professionals_keep_profession_role_to_patient_and_phone() -> None:
    (doc,) = records(mapped("sarepta_dialogmelding-v1.0_avvik.xml"), "document")
    (author,) = _roles(doc.parties)["author"]
    assert author.qualification is not None and (author.qualification.code, author.qualification.display) == (
        "LE",
        "Lege",
    )
    assert author.telecom == ("tel:72727272",)
    first = records(mapped(DIALOG), "document")[0]
    gp = _roles(first.parties)["gp"][0]
    assert gp.relation is not None and (gp.relation.system, gp.relation.code) == ("2.16.578.1.12.4.1.1.9034", "6")


def test_plo_allergy_keeps_its_atc_code_and_flags() -> None:
    (doc,) = records(mapped("sarepta_plo-v1.6_utskrivningsrapport_ny.xml"), "document")
    assert "Allergisk mot:\nDigitalis glycosides (C01AA); hensyn ved forskrivning" in doc.text
    assert "Allergisk mot:\nVeps; pollen/insektstikk" in doc.text
    assert "Sivilstatus:\nEnke/enkemann; bor alene; språk: NORDSAMISK" in doc.text
    given = (
        "Gitt ved overføring:\nBurinex 1 mg Tablett: 2 tabletter gitt kl 08 på utskrivelsesdag (2018-02-02T08:00:00)"
    )
    assert given in doc.text


def test_plo_estimated_event_time_is_marked() -> None:
    raw = (KITH / "sarepta_plo-v1.6_pasientlogistikk_innlagt_ny.xml").read_bytes()
    assert raw.count(b"<Anslag>false</Anslag>") == 1
    (event,) = records(mapped(raw.replace(b"<Anslag>false</Anslag>", b"<Anslag>true</Anslag>")), "care_event")
    assert event.description is not None and event.description.endswith("(tidspunkt anslått)")
    (plain,) = records(mapped(raw), "care_event")
    assert "anslått" not in (plain.description or "")


def test_referral_keeps_next_of_kin_and_marital_status() -> None:
    (ref,) = records(mapped("sarepta_henvisning-v2.0_ny_tilstand_ny.xml"), "referral")
    text = ref.reason or ""
    assert "Pårørende:\nMor: Mor Telokk; nærmeste pårørende; Lundegaardsbakken 13, 5020 Bergen" in text
    assert "Sivilstatus:\nUgift" in text


def test_plo_unit_keeps_its_phone_and_address() -> None:
    (event,) = records(mapped("sarepta_plo-v1.6_pasientlogistikk_innlagt_ny.xml"), "care_event")
    unit = next(p for p in event.parties or () if p.name == "Ortopedisk avdeling Øya")
    assert (unit.kind, unit.telecom) == ("organization", ("tel:73555555",))
    (doc,) = records(mapped("sarepta_plo-v1.6_innleggelsesrapport_ny.xml"), "document")
    addresses = {p.address for p in doc.parties or () if p.kind == "organization"}
    assert "Gammelsletta 88, 7028 Trondheim" in addresses
