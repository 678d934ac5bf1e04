"""Adapter-side checks: hardened parsing, shapes, encodings, recognition, XSD, failed parts (status 3)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from lxml import etree

from adapters.kith_file.inspection import Inspection, family, inspect
from adapters.kith_file.xsd import SchemaSet
from engine.ids import synthetic_fnr
from tests.unit.kith_adapter.conftest import MSGHEAD, RECEIPT, STANDALONE, wrap_in_fellesformat

FNR = synthetic_fnr(1, 1, 1990, 123)
assert FNR is not None
LIMIT = 1 << 24
NS_SVAR = "http://www.kith.no/xmlstds/labsvar/2012-02-15"


def _svar(body: str = "", encoding: str | None = None) -> str:
    decl = f'<?xml version="1.0" encoding="{encoding}"?>\n' if encoding else ""
    return (
        f'{decl}<Message xmlns="{NS_SVAR}"><Type V="SVAR_LAB"/><MIGversion>v1.4 2012-02-15</MIGversion>'
        f'<GenDate V="2026-01-02T03:04:05"/><MsgId>m-1</MsgId><ServReport><Patient><Name>Øyvind Ærlig</Name>'
        f"<OffId>{FNR}</OffId></Patient>{body}</ServReport></Message>"
    )


def _rejected(ins: Inspection, code: str, apprec_code: str) -> None:
    assert ins.reject_code == code, ins.reject
    assert ins.apprec_errors()[0].code == apprec_code
    assert FNR not in (ins.reject or "")


# --- hardened parsing -------------------------------------------------------------------------------------------


def test_xxe_to_a_local_file_is_rejected_and_nothing_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    raw = (
        f'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file://{secret}">]>'
        f'<Message xmlns="{NS_SVAR}"><MsgId>&x;</MsgId></Message>'
    ).encode()
    ins = inspect(raw, max_bytes=LIMIT)
    _rejected(ins, "KITH_DTD_FORBIDDEN", "T99")
    assert "TOPSECRET" not in repr(ins)


def test_billion_laughs_is_rejected() -> None:
    ents = "".join(f'<!ENTITY l{i} "{"&l" + str(i - 1) + ";" * 10}">' for i in range(1, 10))
    raw = f'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY l0 "lol">{ents}]><m>&l9;</m>'.encode()
    _rejected(inspect(raw, max_bytes=LIMIT), "KITH_DTD_FORBIDDEN", "T99")


def test_a_plain_dtd_is_rejected() -> None:
    raw = b'<?xml version="1.0"?><!DOCTYPE Message SYSTEM "http://example.invalid/m.dtd">' + _svar().encode()
    _rejected(inspect(raw, max_bytes=LIMIT), "KITH_DTD_FORBIDDEN", "T99")


def test_oversize_input_is_rejected() -> None:
    _rejected(inspect(_svar().encode(), max_bytes=100), "KITH_TOO_LARGE", "T99")


def test_not_well_formed_keeps_the_msgid_but_no_content() -> None:
    raw = _svar().replace("</ServReport>", "").encode()
    ins = inspect(raw, max_bytes=LIMIT)
    _rejected(ins, "KITH_NOT_WELL_FORMED", "T01")
    assert ins.msg_id == "m-1" and "line" in ins.reject_text


def test_empty_file_is_rejected() -> None:
    _rejected(inspect(b"  \n", max_bytes=LIMIT), "KITH_EMPTY", "T01")


# --- shapes and encodings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shape"),
    [
        (STANDALONE.read_bytes(), "standalone"),
        (MSGHEAD.read_bytes(), "msghead"),
        (wrap_in_fellesformat(MSGHEAD.read_bytes()), "wrapped"),
    ],
)
def test_three_shapes_are_accepted(schemas: SchemaSet, raw: bytes, shape: str) -> None:
    ins = inspect(raw, max_bytes=LIMIT, schemas=schemas)
    assert (ins.shape, ins.reject, ins.part_errors, ins.xsd) == (shape, None, (), "valid")
    assert ins.msg_id and ins.msg_type and ins.sender.inst.id


@pytest.mark.parametrize(
    "raw",
    [
        _svar().encode("iso-8859-1"),  # no declaration, not UTF-8
        _svar(encoding="ISO-8859-1").encode("iso-8859-1"),
        _svar(encoding="iso-8859-1").encode("iso-8859-1"),
        b"\xef\xbb\xbf" + _svar(encoding="UTF-8").encode(),
        b"\xef\xbb\xbf" + _svar().encode(),
        _svar().encode(),
    ],
)
def test_encodings(raw: bytes) -> None:
    ins = inspect(raw, max_bytes=LIMIT)
    assert ins.reject is None and ins.family == "svarrapport" and ins.msg_id == "m-1"


def test_unknown_document_is_rejected_as_unsupported() -> None:
    ins = inspect(b'<Order xmlns="urn:example:shop"><Id>1</Id></Order>', max_bytes=LIMIT)
    _rejected(ins, "KITH_UNSUPPORTED_TYPE", "T10")
    assert "Order (urn:example:shop)" in ins.reject_text


def test_received_apprec_is_a_receipt() -> None:
    ins = inspect(RECEIPT.read_bytes(), max_bytes=LIMIT)
    assert ins.is_receipt and ins.reject is None and ins.msg_type == "APPREC"


def test_family_of_elements() -> None:
    def el(ns: str | None, root: str) -> etree._Element:
        return etree.Element(f"{{{ns}}}{root}" if ns else root)

    assert family(el("http://www.kith.no/xmlstds/po/Pasientlogistikk/2012-04-01", "Pasientlogistikk")) == "plo"
    assert family(el("http://ehelse.no/xmlstds/po/Sammenfatning/2016-05-30", "Sammenfatning")) == "plo"
    assert family(el("http://ehelse.no/xmlstds/henvisning/2017-11-30", "Henvisning")) == "henvisning"
    assert family(el("urn:example:other", "AppRec")) == "apprec"  # a receipt by its root, as the mapping says
    assert family(el(None, "Message")) is None


# --- XSD in the adapter -------------------------------------------------------------------------------------------


def test_xsd_invalid_is_rejected_with_t02(schemas: SchemaSet) -> None:
    raw = STANDALONE.read_bytes().replace(b"<MsgId>", b"<Bogus/><MsgId>", 1)
    ins = inspect(raw, max_bytes=LIMIT, schemas=schemas)
    _rejected(ins, "KITH_XSD_INVALID", "T02")
    assert ins.xsd == "invalid" and ins.msg_id  # still answerable


def test_namespace_without_schema_skips_validation(schemas: SchemaSet) -> None:
    raw = _svar().replace(NS_SVAR, "http://www.kith.no/xmlstds/labsvar/2005-03-14").encode()
    ins = inspect(raw, max_bytes=LIMIT, schemas=schemas)
    assert ins.reject is None and ins.xsd == "no-schema"


# --- parts of a MsgHead (status 3) --------------------------------------------------------------------------------


def _with_documents(*docs: str) -> bytes:
    raw = MSGHEAD.read_bytes()
    extra = "".join(f'<Document><RefDoc><MsgType V="A"/>{d}</RefDoc></Document>' for d in docs)
    return raw.replace(b"</MsgHead>", extra.encode() + b"</MsgHead>")


def _b64(text: str) -> str:
    return f'<Content><Base64Container xmlns="http://www.kith.no/xmlstds/base64container">{text}</Base64Container></Content>'


def test_readable_attachment_is_fine(schemas: SchemaSet) -> None:
    ins = inspect(_with_documents(_b64(base64.b64encode(b"%PDF-1.4").decode())), max_bytes=LIMIT, schemas=schemas)
    assert ins.reject is None and ins.part_errors == ()


def test_unreadable_parts_give_status_3_errors() -> None:
    raw = _with_documents(
        _b64("************"),
        '<Content><Other xmlns="urn:example:x"/></Content>',
        "<FileReference>vedlegg.pdf</FileReference>",
    )
    ins = inspect(raw, max_bytes=LIMIT)
    assert ins.reject is None
    assert [(e.code, e.detail.split(":")[0]) for e in ins.part_errors] == [
        ("T99", "Document[2]"),
        ("T10", "Document[3]"),
        ("T99", "Document[4]"),
    ]
    assert ins.apprec_errors() == ins.part_errors


def test_msghead_with_no_usable_xml_is_rejected() -> None:
    raw = MSGHEAD.read_bytes()
    start, end = raw.index(b"<Dialogmelding"), raw.index(b"</Dialogmelding>") + len(b"</Dialogmelding>")
    raw = raw[:start] + b'<Other xmlns="urn:example:x"/>' + raw[end:]
    _rejected(inspect(raw, max_bytes=LIMIT), "KITH_UNSUPPORTED_TYPE", "T10")


def test_msghead_with_only_unreadable_attachments_has_no_payload() -> None:
    raw = MSGHEAD.read_bytes()
    start, end = raw.index(b"<Document>"), raw.index(b"</Document>") + len(b"</Document>")
    raw = raw[:start] + raw[end:]
    raw = raw.replace(
        b"</MsgHead>", f'<Document><RefDoc><MsgType V="A"/>{_b64("")}</RefDoc></Document>'.encode() + b"</MsgHead>"
    )
    ins = inspect(raw, max_bytes=LIMIT)
    _rejected(ins, "KITH_NO_PAYLOAD", "T99")
    assert "Document[1]: attachment is not readable base64" in ins.reject_text
