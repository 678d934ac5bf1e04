"""ORU^R01 fidelity: reports, requisitions, specimens, parties, comments, codings, attachments, dates, the
Person, and the status table (one case per row)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from engine import ids
from engine.errors import ValidationError
from engine.model import Observation, RecordStatus
from mappings.hl7v2 import map_message, parties, status
from mappings.hl7v2.message import delimiters_from_msh2
from mappings.hl7v2.timeutil import OSLO
from tests.unit.hl7v2.conftest import fixture_bytes, make_ctx, observations, of_kind

FIDELITY = "no_ORU-R01_synthetic_fidelity_utf8.hl7"
D = delimiters_from_msh2("|", "^~\\&")
OBR = "OBR|1|P-1|F-1^LAB|PANEL^Panel^L|||20260316070000|||||||||||||||20260316090000|||F"


def oru(*segs: str, pid: str = "PID|1||900^^^HOSP^PI") -> bytes:
    head = "MSH|^~\\&|LAB|LABFAC|||20260316091500||ORU^R01|M-1|P|2.5"
    return ("\r".join([head, pid, *segs]) + "\r").encode()


def test_fidelity_fixture_report_requisition_specimen_and_links() -> None:
    result = map_message(fixture_bytes(FIDELITY), make_ctx())
    (person,) = of_kind(result, "person")
    hb, lmp, bact, pdf, crp, vitd = observations(result)
    report, planned = of_kind(result, "report")
    req, _ = of_kind(result, "requisition")
    (spm,) = of_kind(result, "specimen")
    assert report.result_keys == (hb.key, lmp.key, bact.key, pdf.key, crp.key)
    assert {hb.report_key, hb.requisition_key, hb.specimen_key} == {report.key, req.key, spm.key}
    assert (report.status, report.category, report.code_text) == (RecordStatus.PRELIMINARY, "lab", "Kjemi, akutt")
    assert report.alt_codes is not None and report.alt_codes[0].code == "NPU-PANEL-1"
    assert report.comments == ("Pasienten er fastende.", "Prøven ankom sent.")  # the PID's NTE, then the OBR's
    assert (req.placer_id, req.filler_id, req.priority) == ("REK-2001@EPJ", "LAB-900001@LABSYS", "stat")
    assert req.priority_code is not None and req.priority_code.code == "S"
    assert req.reason == "Hodepine siste uke" and req.reason_codes is not None and req.reason_codes[0].code == "R51"
    assert req.requested_at == datetime(2026, 4, 2, 7, 45, tzinfo=OSLO)
    assert (spm.sample_id, spm.received_at) == ("PRV-77", datetime(2026, 4, 2, 8, 15, tzinfo=OSLO))
    assert spm.body_site is not None and spm.body_site.code == "LA"
    assert (person.given_name, person.middle_name, person.birth_date) == ("Kari", "Marie", date(1972, 5, 14))
    assert planned.status is RecordStatus.PRELIMINARY and "RESULTS_PENDING" in planned.flags
    assert vitd.status is RecordStatus.PRELIMINARY and "RESULT_PENDING" in vitd.flags  # planned: no final result


def test_fidelity_fixture_results() -> None:
    result = map_message(fixture_bytes(FIDELITY), make_ctx())
    hb, lmp, _bact, pdf, crp, _ = observations(result)
    assert hb.alt_codes is not None and (hb.alt_codes[0].code, hb.code_text) == ("HB", "Hemoglobin i blod")
    assert hb.comments == ("Verdien er kontrollert.",)
    assert hb.parties is not None
    roles = [(p.role, p.kind, p.ids[0].system, p.ids[0].value) for p in hb.parties]
    assert roles == [
        ("responsible", "practitioner", ids.OID_HPR, "1111111"),
        ("performer", "organization", ids.OID_HER, "98765"),
        ("performer", "practitioner", ids.OID_HPR, "2222222"),
    ]
    assert (lmp.value_date, lmp.value_text) == (date(2026, 3, 15), "20260315")
    (att,) = result.attachments
    assert pdf.value_attachment == att.ref(description="Svarrapport") and att.data.startswith(b"%PDF-1.4")
    assert pdf.comments == ("Svarrapport som PDF",)
    assert crp.status is RecordStatus.PRELIMINARY and "RESULT_PENDING" in crp.flags


def test_report_parties_sender_requester_responsible() -> None:
    report = of_kind(map_message(fixture_bytes(FIDELITY), make_ctx()), "report")[0]
    assert report.parties is not None
    found = [(p.role, p.name, p.ids[0].system if p.ids else None) for p in report.parties]
    assert found == [
        ("sender", "FURST", ids.OID_HER),
        ("requester", "Lise Lege", ids.OID_HPR),  # OBR-16 and ORC-12 name the same HPR number: once
        ("requester", "Legekontoret", ids.OID_HER),
        ("responsible", "Per Patolog", ids.OID_HPR),
    ]


def test_person_from_oru_has_the_adt_key_and_the_gp() -> None:
    result = map_message(fixture_bytes(FIDELITY), make_ctx())
    (person,) = of_kind(result, "person")
    adt = fixture_bytes(FIDELITY).split(b"\rNTE", 1)[0].replace(b"ORU^R01^ORU_R01", b"ADT^A08^ADT_A01") + b"\r"
    (adt_person,) = of_kind(map_message(adt, make_ctx()), "person")
    assert person.key == adt_person.key and person.content_json() == adt_person.content_json()
    assert person.parties is not None and person.parties[0].role == "gp"


@pytest.mark.parametrize(
    "raw,system,value",
    [
        ("123^Lege^Lise^^^^^^HPR", ids.OID_HPR, "123"),
        ("0123^Lege^Lise^^^^^^&2.16.578.1.12.4.1.4.4&ISO", ids.OID_HPR, "123"),
        ("123^Lege^Lise^^^^^^^^^^HPR", ids.OID_HPR, "123"),
        ("55^Lege^Lise^^^^^^HER", ids.OID_HER, "55"),
        ("77^Lege^Lise^^^^^^&1.2.3.4&ISO", "1.2.3.4", "77"),
        ("L9^Lege^Lise^^^^^^DIPS", ids.OID_LOCAL_PREFIX + "DIPS", "L9"),
        ("L9^Lege^Lise", ids.OID_LOCAL_PREFIX + "LABFAC", "L9"),
    ],
)
def test_xcn_ids_hpr_her_oid_or_local(raw: str, system: str, value: str) -> None:
    party = parties.xcn(raw, D, "requester", "LABFAC")
    assert party is not None and (party.ids[0].system, party.ids[0].value) == (system, value)
    assert party.name == "Lise Lege"


def test_obr_specimen_without_spm_and_date_only_times() -> None:
    obr = "OBR|1|P-1|F-1^LAB|PANEL^Panel^L|||20260316|||||||20260316083000|BLD&Blod&HL70070^^^LA&Arm&HL70163"
    result = map_message(oru(obr, "OBX|1|NM|A^a^L||1||||||F|||20260316"), make_ctx())
    (spm,) = of_kind(result, "specimen")
    (obs,) = observations(result)
    assert spm.specimen_type is not None and spm.specimen_type.code == "BLD"
    assert spm.body_site is not None and spm.body_site.code == "LA"
    assert (spm.collected_at, spm.collected_date) == (None, date(2026, 3, 16))
    assert spm.received_at == datetime(2026, 3, 16, 8, 30, tzinfo=OSLO)
    assert (obs.effective_time, obs.effective_date, obs.specimen_key) == (None, date(2026, 3, 16), spm.key)


def test_ts_value_of_a_date_only_is_a_date() -> None:
    (obs,) = observations(map_message(oru(OBR, "OBX|1|TS|A^a^L||20260301||||||F"), make_ctx()))
    assert obs.value_date == date(2026, 3, 1)
    (obs,) = observations(map_message(oru(OBR, "OBX|1|TS|A^a^L||202603011230||||||F"), make_ctx()))
    assert obs.value_date is None and obs.value_text == "202603011230"


def test_nte_after_obx_is_its_comment_not_its_value() -> None:
    raw = oru(OBR, "NTE|1||Om bestillingen", "OBX|1|ST|A^a^L||positiv||||||F", "NTE|1||Linje 1~Linje 2")
    (obs,) = observations(result := map_message(raw, make_ctx()))
    assert (obs.value_text, obs.comments) == ("positiv", ("Linje 1\nLinje 2",))
    assert of_kind(result, "report")[0].comments == ("Om bestillingen",)


def test_patient_note_without_a_report_is_a_warning_not_dropped_silently() -> None:
    result = map_message(oru("NTE|1||Om pasienten", "OBX|1|NM|A^a^L||1"), make_ctx())
    assert "HL7_PATIENT_NOTE_WITHOUT_REPORT" in result.warnings


def test_requisition_of_an_orc_is_replaced_by_its_obr() -> None:
    raw = oru("ORC|RE|P-1|F-1^LAB", "OBX|1|NM|A^a^L||1", OBR, "OBX|1|NM|B^b^L||2")
    (req,) = of_kind(map_message(raw, make_ctx()), "requisition")
    assert req.codes is not None and req.codes[0].code == "PANEL"


def test_repeated_filler_gets_a_report_of_its_own() -> None:
    raw = oru(OBR, "OBX|1|NM|A^a^L||1", OBR, "OBX|1|NM|B^b^L||2")
    a, b = of_kind(map_message(raw, make_ctx()), "report")
    assert b.key == a.key + "#2" and "DUPLICATE_KEY_IN_MESSAGE" in b.flags


@pytest.mark.parametrize(("code", "expected"), [("S", "stat"), ("A", "asap"), ("R", "routine"), ("T", "urgent")])
def test_priority_from_tq1_or_orc(code: str, expected: str) -> None:
    raw = oru("ORC|RE|P-1|F-1^LAB", OBR, f"TQ1|1||||||||{code}", "OBX|1|NM|A^a^L||1")
    assert of_kind(map_message(raw, make_ctx()), "requisition")[0].priority == expected
    raw = oru(f"ORC|RE|P-1|F-1^LAB||||^^^^^{code}", OBR, "OBX|1|NM|A^a^L||1")
    assert of_kind(map_message(raw, make_ctx()), "requisition")[0].priority == expected


def test_planned_order_without_results_is_still_a_dead_letter() -> None:
    with pytest.raises(ValidationError) as err:
        map_message(oru(OBR.replace("|||F", "|||S")), make_ctx())
    assert err.value.code == "HL7_NO_RESULTS"


def _matches(row: status.Row, obr25: str, obx11: str, has_value: bool) -> bool:
    return (
        (row.obr25 is None or obr25 in row.obr25)
        and (row.obx11 is None or obx11 in row.obx11)
        and (row.has_value is None or row.has_value is has_value)
    )


def _case(row: status.Row) -> tuple[str, str, bool]:
    """A concrete (OBR-25, OBX-11, has value) that ``row`` is the first match of."""
    for obr25 in sorted(row.obr25 or status.OBR25_CODES):
        for obx11 in sorted(row.obx11 or status.OBX11_CODES):
            for has_value in (False, True) if row.has_value is None else (row.has_value,):
                if next(r for r in status.ROWS if _matches(r, obr25, obx11, has_value)) is row:
                    return obr25, obx11, has_value
    raise AssertionError("a row the rows before it shadow")


def _row_id(row: status.Row) -> str:
    return f"{'/'.join(sorted(row.obr25 or ['*']))}x{'/'.join(sorted(row.obx11 or ['*']))}-{row.has_value}"


@pytest.mark.parametrize("row", status.ROWS, ids=_row_id)
def test_status_table_row(row: status.Row) -> None:
    obr25, obx11, has_value = _case(row)
    obr = OBR.replace("|||F", f"|||{obr25}")
    value = "1" if has_value else ""
    (obs,) = observations(map_message(oru(obr, f"OBX|1|NM|A^a^L||{value}||||||{obx11}"), make_ctx()))
    assert isinstance(obs, Observation) and obs.status is row.status
    assert (row.flag in obs.flags) if row.flag else not ({"RESULT_PENDING", "STATUS_MISSING"} & set(obs.flags))


@pytest.mark.parametrize(
    ("obr25", "expected", "flag"),
    [
        ("F", RecordStatus.FINAL, None),
        ("C", RecordStatus.CORRECTED, None),
        ("P", RecordStatus.PRELIMINARY, None),
        ("A", RecordStatus.PRELIMINARY, None),
        ("X", RecordStatus.CANCELLED, None),
        ("S", RecordStatus.PRELIMINARY, "RESULTS_PENDING"),
        ("I", RecordStatus.PRELIMINARY, "RESULTS_PENDING"),
        ("", RecordStatus.FINAL, "STATUS_MISSING"),
    ],
)
def test_report_status(obr25: str, expected: RecordStatus, flag: str | None) -> None:
    obr = OBR.replace("|||F", f"|||{obr25}")
    (report,) = of_kind(map_message(oru(obr, "OBX|1|NM|A^a^L||1||||||F"), make_ctx()), "report")
    assert report.status is expected and (flag in report.flags if flag else not report.flags)


def test_obr15_type_alone_stays_on_the_results_without_a_specimen_record() -> None:
    obr = "OBR|1|P-1|F-1^LAB|PANEL^Panel^L|||20260316070000||||||||BLD&Blod&HL70070"
    result = map_message(oru(obr, "OBX|1|NM|A^a^L||1||||||F"), make_ctx())
    (obs,) = observations(result)
    assert not of_kind(result, "specimen") and obs.specimen_key is None
    assert obs.specimen is not None and obs.specimen.code == "BLD"
    assert of_kind(result, "report")[0].effective_time == datetime(2026, 3, 16, 7, 0, tzinfo=OSLO)


def test_a_batch_keeps_the_attachments_of_every_message() -> None:
    one = oru(OBR, "OBX|1|ED|PDF^Rapport^L||LAB^AP^PDF^Base64^JVBERi0xLjQK||||||F")
    two = one.replace(b"M-1", b"M-2").replace(b"JVBERi0xLjQK", b"JVBERi0xLjUK")
    result = map_message(one + b"\n" + two, make_ctx())
    assert sorted(a.data for a in result.attachments) == [b"%PDF-1.4\n", b"%PDF-1.5\n"]
