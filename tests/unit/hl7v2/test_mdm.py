"""MDM -> Document: key from TXA-12, status from TXA-17/TXA-19/T11, text from OBX, attachments."""

from __future__ import annotations

import pytest

from engine.errors import ParseError, ValidationError
from engine.model import Document, RecordStatus
from mappings.hl7v2 import map_message
from tests.unit.hl7v2.conftest import make_ctx


def txa(doc: str = "DOC-1", status: str = "AU", availability: str = "AV", parent: str = "") -> str:
    f = [""] * 26
    f[1], f[2], f[9], f[12], f[13], f[17], f[19], f[25] = (
        "1",
        "DS^Epikrise^HL70270",
        "77^Lege^Lise",
        doc,
        parent,
        status,
        availability,
        "Epikrise etter innleggelse",
    )
    return "TXA|" + "|".join(f[1:])


def mdm(event: str, txa_seg: str, obx: str = "OBX|1|TX|||Linje én\rOBX|2|FT|||Linje\\.br\\to") -> bytes:
    return (
        f"MSH|^~\\&|EPJ|HOSP|||20260320100000||MDM^{event}|D-{event}|P|2.5||||||UNICODE UTF-8\r"
        f"EVN|{event}|20260320095900\rPID|1||900^^^HOSP^PI\r{txa_seg}\r{obx}\r"
    ).encode()


def doc(raw: bytes) -> Document:
    (d,) = map_message(raw, make_ctx()).records
    return d  # type: ignore[no-any-return]


def test_t02_document() -> None:
    d = doc(mdm("T02", txa()))
    assert d.key == "hl7v2|HOSP|document|DOC-1"
    assert d.status is RecordStatus.FINAL
    assert d.text == "Linje én\nLinje\nto" and d.mime_type == "text/plain"
    assert (d.title, d.author, d.doc_type.code, d.doc_type.display) == (
        "Epikrise etter innleggelse",
        "Lise Lege",
        "DS",
        "Epikrise",
    )


@pytest.mark.parametrize(
    "status,availability,expected",
    [
        ("IP", "AV", RecordStatus.PRELIMINARY),
        ("DI", "", RecordStatus.PRELIMINARY),
        ("LA", "", RecordStatus.FINAL),
        ("AU", "CA", RecordStatus.CANCELLED),
        ("AU", "OB", RecordStatus.CANCELLED),
    ],
)
def test_status(status: str, availability: str, expected: RecordStatus) -> None:
    assert doc(mdm("T02", txa(status=status, availability=availability))).status is expected


def test_t11_cancels_same_key() -> None:
    orig = doc(mdm("T02", txa()))
    cancel = doc(mdm("T11", txa(), obx=""))
    assert cancel.key == orig.key and cancel.status is RecordStatus.CANCELLED and cancel.text is None


def test_addendum_names_parent() -> None:
    d = doc(mdm("T06", txa(doc="DOC-2", parent="DOC-1")))
    assert d.key.endswith("DOC-2") and d.parent_ref == "DOC-1"


def test_notification_writes_nothing() -> None:
    result = map_message(mdm("T01", txa(), obx=""), make_ctx())
    assert result.records == () and "HL7_NOTIFICATION_ONLY" in result.warnings


def test_ed_attachment_is_decoded_once_with_its_description() -> None:
    raw = mdm("T02", txa(), obx="OBX|1|ED|PDF^Epikrise^L||EPJ^AP^PDF^Base64^JVBERi0xLjQK\rNTE|1||Signert")
    result = map_message(raw, make_ctx())
    d = doc(raw)
    (att,) = result.attachments
    assert att.data == b"%PDF-1.4\n" and d.attachments == (att.ref(description="Epikrise"),) and d.text is None
    assert "ATTACHMENT_NOT_INLINED" not in d.flags and "JVBERi0" not in d.model_dump_json()


def test_ed_description_from_the_following_nte() -> None:
    d = doc(mdm("T02", txa(), obx="OBX|1|ED|||EPJ^AP^PDF^Base64^JVBERi0xLjQK\rNTE|1||Epikrise fra sykehus"))
    assert [(a.content_type, a.size, a.description) for a in d.attachments] == [
        ("application/pdf", 9, "Epikrise fra sykehus")
    ]


def test_rp_and_undecodable_ed_are_named_and_flagged() -> None:
    d = doc(mdm("T02", txa(), obx="OBX|1|RP|||doc/1^^AP^PDF\rOBX|2|ED|||EPJ^AP^PDF^Base64^*bad*"))
    assert [(a.content_type, a.size) for a in d.attachments] == [("application/pdf", 0), ("application/pdf", 0)]
    assert {"ATTACHMENT_NOT_INLINED", "ATTACHMENT_DECODE_FAILED"} <= set(d.flags)


def test_mdm_writes_the_person_with_the_adt_key() -> None:
    pid = b"PID|1||900^^^HOSP^PI||Nordmann^Ola^Johan||19800101|M"
    raw = mdm("T02", txa()).replace(b"PID|1||900^^^HOSP^PI", pid)
    adt = b"MSH|^~\\&|EPJ|HOSP|||20260320090000||ADT^A08|A-1|P|2.5\r" + pid + b"\r"
    person, d = map_message(raw, make_ctx()).records
    (adt_person,) = map_message(adt, make_ctx()).records
    assert (person.kind, d.kind) == ("person", "document") and person.key == adt_person.key
    assert (person.given_name, person.middle_name, person.birth_date.isoformat()) == ("Ola", "Johan", "1980-01-01")


def test_missing_document_number_and_txa() -> None:
    with pytest.raises(ValidationError) as err:
        map_message(mdm("T02", txa(doc="")), make_ctx())
    assert err.value.code == "HL7_NO_DOCUMENT_NUMBER"
    with pytest.raises(ParseError) as perr:
        map_message(mdm("T02", "NTE|1"), make_ctx())
    assert perr.value.code == "HL7_NO_TXA"
