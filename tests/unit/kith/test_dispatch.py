"""Entry point: encodings, shapes, dispatch, rejections with codes, partial mapping warnings, no data in errors."""

from __future__ import annotations

import pytest

from engine.errors import ParseError, PermanentError, UnsupportedMessage, ValidationError
from tests.unit.kith.helpers import KITH, mapped, records

SYNTH = (KITH / "synthetic_svarrapport_v1.4.xml").read_text(encoding="utf-8")
NAME = "Ødegård, Åse"
BODY = SYNTH.split("?>", 1)[1].replace("Testesen, Kari", NAME)
DIALOG = (KITH / "sarepta_dialogmelding-v1.0_foresporsel.xml").read_text(encoding="utf-8")


def family_and_given(raw: bytes) -> tuple[str | None, str | None]:
    (person,) = records(mapped(raw), "person")
    return person.family_name, person.given_name


@pytest.mark.parametrize(
    "raw",
    [
        ('<?xml version="1.0" encoding="ISO-8859-1"?>' + BODY).encode("iso-8859-1"),
        ("<?xml version='1.0' encoding='iso-8859-1'?>" + BODY).encode("iso-8859-1"),
        BODY.encode("iso-8859-1"),  # no declaration, not UTF-8
        ('<?xml version="1.0" encoding="UTF-8"?>' + BODY).encode("iso-8859-1"),  # mislabelled by the sender
        b"\xef\xbb\xbf" + ('<?xml version="1.0" encoding="UTF-8"?>' + BODY).encode("utf-8"),
        b"\xef\xbb\xbf" + BODY.encode("utf-8"),  # BOM, no declaration
        BODY.encode("utf-8"),  # no declaration
    ],
    ids=[
        "latin1",
        "latin1-lowercase",
        "latin1-nodecl",
        "latin1-labelled-utf8",
        "utf8-bom",
        "utf8-bom-nodecl",
        "utf8-nodecl",
    ],
)
def test_encodings(raw: bytes) -> None:
    assert family_and_given(raw) == ("Ødegård", "Åse")


def test_svarrapport_inside_msghead_uses_both_patients_and_the_msghead_type() -> None:
    head, tail = DIALOG.split("<Content>")[0], DIALOG.split("</Content>")[1]
    wrapped = head.replace("DIALOG_FORESPORSEL", "SVAR_LAB") + "<Content>" + BODY + "</Content>" + tail
    result = mapped(wrapped.encode())
    assert result.message_type == "SVAR_LAB" and len(records(result, "observation")) == 4
    (person,) = records(result, "person")
    assert {i.value for i in person.identifiers} >= {"13116900216", "24838541212"}  # both asserted: a conflict to flag
    assert result.source_message_id == "f0f88210-0111-11e8-8f1a-0800200c9a66"  # the MsgHead id (AppRec)


def test_unmapped_second_payload_becomes_a_warning() -> None:
    extra = '<Content><Other xmlns="urn:example:unknown"/></Content>'
    raw = DIALOG.replace(
        "</RefDoc>", '</RefDoc></Document><Document><RefDoc><MsgType V="XML"/>' + extra + "</RefDoc>", 1
    )
    result = mapped(raw.encode())
    assert result.warnings == ("KITH_PART_UNMAPPED:Document[2]",)
    assert records(result, "document")


@pytest.mark.parametrize(
    "raw,error,code",
    [
        (b"<Message><Unclosed></Message>", ParseError, "KITH_NOT_WELL_FORMED"),
        (b"", ParseError, "KITH_EMPTY"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
            ParseError,
            "KITH_DTD_FORBIDDEN",
        ),
        (b'<Foo xmlns="urn:example:foo"/>', UnsupportedMessage, "KITH_UNSUPPORTED_TYPE"),
        ((KITH / "sarepta_apprec-v1.0_npr_eksempel.xml").read_bytes(), UnsupportedMessage, "KITH_NOT_CLINICAL"),
        (
            b'<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24"><MsgInfo/></MsgHead>',
            ValidationError,
            "KITH_NO_PAYLOAD",
        ),
        (b'<Message xmlns="http://www.kith.no/xmlstds/henvisning/2012-02-15"/>', ValidationError, "KITH_MISSING_PART"),
    ],
)
def test_rejections_carry_stable_codes(raw: bytes, error: type[PermanentError], code: str) -> None:
    with pytest.raises(error) as info:
        mapped(raw)
    assert info.value.code == code


def test_errors_name_no_personal_data() -> None:
    raw = SYNTH.replace("<OffId>24838541212</OffId>", "").replace("<IdByServProvider>L-7700123</IdByServProvider>", "")
    raw = raw.replace("<ServReport>", "<ServReport><Unclosed>", 1)
    with pytest.raises(PermanentError) as info:
        mapped(raw.encode())
    assert "Testesen" not in str(info.value) and "2483854" not in str(info.value)


def test_payload_children_in_foreign_namespaces_are_tolerated() -> None:
    raw = SYNTH.replace("<OffId>", '<OffId xmlns="urn:example:slip">')
    (person,) = records(mapped(raw.encode()), "person")
    assert person.subject.value == "24838541212"


def test_msghead_inside_a_receivers_wrapper_maps_like_the_bare_msghead() -> None:
    body = DIALOG.split("?>", 1)[1].split("-->")[-1]
    wrapped = (
        '<EI_fellesformat xmlns="http://www.nav.no/xml/eiff/2/">'
        + body
        + '<MottakenhetBlokk ediLoggId="x"/></EI_fellesformat>'
    )
    bare, nav = mapped(DIALOG.encode()), mapped(wrapped.encode())
    assert [r.key for r in nav.records] == [r.key for r in bare.records] and nav.message_type == "DIALOG_FORESPORSEL"
