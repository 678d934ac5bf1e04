"""AppRec 1.1 builder: structure, swapped parties, statuses, atomic write; every receipt validates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from adapters.durable import write_file
from adapters.kith_file.apprec import (
    NS_APPREC,
    OID_ERROR,
    AppRecError,
    Original,
    Party,
    Status,
    Unit,
    as_datetime,
    build_apprec,
    receipt_name,
)
from adapters.kith_file.inspection import inspect
from tests.unit.kith_adapter.conftest import MSGHEAD, REFERRAL, STANDALONE, corpus_files

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
A = {"a": NS_APPREC}


def _receipt(raw: bytes, status: Status = Status.OK, errors: tuple[AppRecError, ...] = ()) -> etree._Element:
    ins = inspect(raw, max_bytes=1 << 24)
    original = Original(
        ins.msg_type or "UKJENT", ins.msg_id or "stem", as_datetime(ins.issue_date, NOW), ins.msg_type_dn
    )
    _, data = build_apprec(
        status=status, original=original, sender=ins.receiver, receiver=ins.sender, gen_date=NOW, errors=errors
    )
    return etree.fromstring(data)


def _assert_valid(schema: etree.XMLSchema, root: etree._Element) -> None:
    assert schema.validate(root), [e.message for e in schema.error_log]


def test_ok_receipt_for_a_msghead_swaps_sender_and_receiver(apprec_schema: etree.XMLSchema) -> None:
    root = _receipt(MSGHEAD.read_bytes())
    _assert_valid(apprec_schema, root)
    assert root.findtext("a:MIGversion", namespaces=A) == "v1.1 2012-02-15"
    assert root.find("a:MsgType", A).get("V") == "APPREC"
    assert root.findtext("a:Sender/a:HCP/a:Inst/a:Id", namespaces=A) == "91096"  # the original receiver
    assert root.findtext("a:Receiver/a:HCP/a:Inst/a:Id", namespaces=A) == "99387"  # the original sender
    assert root.findtext("a:Receiver/a:HCP/a:Inst/a:Dept/a:Id", namespaces=A) == "5078"
    assert root.find("a:Status", A).attrib == {"V": "1", "DN": "OK"}
    assert root.find("a:OriginalMsgId/a:MsgType", A).get("V") == "DIALOG_FORESPORSEL"
    assert root.findtext("a:OriginalMsgId/a:Id", namespaces=A) == "f0f88210-0111-11e8-8f1a-0800200c9a66"
    assert root.findtext("a:OriginalMsgId/a:IssueDate", namespaces=A) == "2018-01-24T10:23:32"


def test_standalone_report_is_answered_to_the_service_provider(apprec_schema: etree.XMLSchema) -> None:
    root = _receipt(STANDALONE.read_bytes())
    _assert_valid(apprec_schema, root)
    assert root.findtext("a:Receiver/a:HCP/a:Inst/a:Id", namespaces=A) == "59"  # the lab (ServProvider)
    assert root.findtext("a:Sender/a:HCP/a:Inst/a:Id", namespaces=A) == "56704"  # the GP (Requester)


def test_standalone_referral_is_answered_to_the_requester(apprec_schema: etree.XMLSchema) -> None:
    root = _receipt(REFERRAL.read_bytes())
    _assert_valid(apprec_schema, root)
    assert root.findtext("a:Receiver/a:HCP/a:Inst/a:Id", namespaces=A) == "56704"


def test_rejected_receipt_carries_coded_errors(apprec_schema: etree.XMLSchema) -> None:
    err = AppRecError("T02", "KITH_XSD_INVALID: line 9, column 0, at /Message/Bogus: not expected")
    root = _receipt(STANDALONE.read_bytes(), Status.REJECTED, (err,))
    _assert_valid(apprec_schema, root)
    assert root.find("a:Status", A).attrib == {"V": "2", "DN": "Avvist"}
    e = root.find("a:Error", A)
    assert (e.get("V"), e.get("S"), e.get("DN")) == ("T02", OID_ERROR, "XML validerer ikke")
    assert e.get("OT", "").startswith("KITH_XSD_INVALID")


def test_partial_receipt_lists_each_failed_part(apprec_schema: etree.XMLSchema) -> None:
    errs = (AppRecError("T10", "Document[2]: unsupported"), AppRecError("T99", "Document[3]: attachment"))
    root = _receipt(MSGHEAD.read_bytes(), Status.PARTIAL, errs)
    _assert_valid(apprec_schema, root)
    assert root.find("a:Status", A).get("DN") == "OK, feil i delmelding"
    assert [e.get("V") for e in root.findall("a:Error", A)] == ["T10", "T99"]


def test_unknown_parties_and_type_still_validate(apprec_schema: etree.XMLSchema) -> None:
    original = Original("UKJENT", "file-stem", as_datetime(None, NOW))
    ours = Party(Unit(name="Enjournal", id="12345", id_type="HER", id_type_dn="HER-id"))
    _, data = build_apprec(
        status=Status.REJECTED,
        original=original,
        sender=ours,
        receiver=Party(),
        gen_date=NOW,
        errors=(AppRecError("T01", "KITH_NOT_WELL_FORMED: not well-formed XML at line 3"),),
    )
    _assert_valid(apprec_schema, etree.fromstring(data))


@pytest.mark.skipif(not corpus_files(), reason="shared corpus not present")
@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_receipt_for_every_corpus_file_validates(apprec_schema: etree.XMLSchema, path: Path) -> None:
    _assert_valid(apprec_schema, _receipt(path.read_bytes()))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-01-24T10:23:32", "2018-01-24T10:23:32"),
        ("2009-09-10T11:31:54.148+02:00", "2009-09-10T11:31:54.148+02:00"),
        ("2017-05-05", "2017-05-05T00:00:00"),
        ("2017-05", NOW.isoformat()),
        (None, NOW.isoformat()),
    ],
)
def test_as_datetime(text: str | None, expected: str) -> None:
    assert as_datetime(text, NOW) == expected


def test_receipt_name_is_safe() -> None:
    assert receipt_name("f0f8-11e8", "abc") == "apprec-f0f8-11e8-abc.xml"
    assert receipt_name("../../etc/x y", "abc") == "apprec-etc_x_y-abc.xml"
    assert receipt_name("", "abc") == "apprec-unknown-abc.xml"


def test_write_is_atomic_and_named_after_the_original(tmp_path: Path) -> None:
    rid, data = build_apprec(
        status=Status.OK,
        original=Original("X", "m1", as_datetime(None, NOW)),
        sender=Party(),
        receiver=Party(),
        gen_date=NOW,
        apprec_id="r1",
    )
    (tmp_path / "out").mkdir()
    target = write_file(tmp_path / "out" / receipt_name("m1", rid), data)
    assert target.name == "apprec-m1-r1.xml" and target.read_bytes() == data
    assert [p.name for p in (tmp_path / "out").iterdir()] == [target.name]


def test_error_text_passes_safe_reason_last(apprec_schema: etree.XMLSchema) -> None:
    from tests.helpers import fnr

    n = fnr(11)
    err = AppRecError("X99", f"SOME_CODE: quoted 'O'Hara {n}' and split {n[:6]} {n[6:]}")
    root = _receipt(STANDALONE.read_bytes(), Status.REJECTED, (err,))
    _assert_valid(apprec_schema, root)
    ot = root.find("a:Error", A).get("OT", "")
    assert ot.startswith("SOME_CODE: quoted") and "Hara" not in ot and n[6:] not in ot and n[:6] not in ot
