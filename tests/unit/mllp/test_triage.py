"""Triage of one HL7 message: accepted, rejected (no MSH, bad MSH, unsupported type), strict problems."""

from __future__ import annotations

from adapters.hl7_intake import Hl7Options, judge, triage
from adapters.mllp.client import synthetic_adt

OPTS = Hl7Options()


def test_accepted_message_envelope() -> None:
    raw = synthetic_adt(1)
    t = triage(raw, adapter="a", options=OPTS, source_system="lab", attributes={"peer": "127.0.0.1"})
    assert t.accepted and t.error is None
    env = t.envelope
    assert env.raw == raw and env.content_type == "application/hl7-v2" and env.mapping == "hl7v2"
    assert env.dedup_key == "HL7|LOADGEN|TEST|MSG00000001" and env.charset == "iso-8859-1"
    assert env.source_system == "lab" and env.attributes == {"peer": "127.0.0.1"}


def test_charset_from_msh18() -> None:
    raw = synthetic_adt(2).replace(b"|P|2.5\r", b"|P|2.5||||||UNICODE UTF-8\r")
    assert triage(raw, adapter="a", options=OPTS, source_system=None).envelope.charset == "utf-8"


def test_no_msh_is_rejected_but_published() -> None:
    t = triage(b"PID|1||x\r", adapter="a", options=OPTS, source_system=None)
    assert t.code == "AR" and t.error is not None and t.error.code == "HL7_NO_MSH"
    assert str(t.envelope.rejection).startswith("HL7_NO_MSH: ")
    assert t.envelope.dedup_key is None


def test_bad_msh_rejected() -> None:
    _, code, err = judge(b"MSH|^~\\&|A|B|C|D|2024|||\r", OPTS)
    assert code == "AR" and err is not None and err.code == "HL7_BAD_MSH"


def test_unsupported_type() -> None:
    t = triage(synthetic_adt(3, message_type="ORM"), adapter="a", options=OPTS, source_system=None)
    assert t.code == "AR" and t.error is not None and t.error.code == "HL7_UNSUPPORTED_TYPE"
    assert str(t.envelope.rejection) == "HL7_UNSUPPORTED_TYPE: message type ORM is not accepted"


def test_accepted_types_setting() -> None:
    opts = Hl7Options(accepted_types=["orm", " adt "])
    assert opts.accepted_types == ["ORM", "ADT"]
    assert judge(synthetic_adt(4, message_type="ORM"), opts)[1] == "AA"
    assert judge(synthetic_adt(4, message_type="ORU"), opts)[1] == "AR"


def test_strict_problems_give_ae_with_first_code() -> None:
    _, code, err = judge(synthetic_adt(5), OPTS, strict=lambda raw: ["HL7_PID_MISSING: PID-3 empty", "x"])
    assert code == "AE" and err is not None and err.code == "HL7_PID_MISSING"
    _, code, err = judge(synthetic_adt(5), OPTS, strict=lambda raw: ["something odd"])
    assert code == "AE" and err is not None and err.code == "HL7_STRICT_INVALID"
    assert judge(synthetic_adt(5), OPTS, strict=lambda raw: [])[1] == "AA"


def test_reject_reason_never_quotes_content() -> None:
    raw = synthetic_adt(6, message_type="ORM")
    t = triage(raw, adapter="a", options=OPTS, source_system=None)
    pid = raw.split(b"PID|1||", 1)[1].split(b"^", 1)[0].decode()
    assert pid not in str(t.envelope.rejection)


def test_mapping_options_carry_the_default_charset() -> None:
    assert Hl7Options(default_charset="cp1252", strict=True).mapping_options() == {"default_charset": "cp1252"}


def test_dedup_key_escapes_what_a_store_cannot_hold_or_would_confuse() -> None:
    """The header's own key is the storable one (every caller gets it), and triage's envelope carries it."""
    import dataclasses

    from adapters.hl7_intake.ack import FALLBACK
    from mappings.hl7v2.parser import MAX_KEY_CHARS

    def key(app: str, fac: str, cid: str) -> str:
        return dataclasses.replace(FALLBACK, sending_app=app, sending_facility=fac, control_id=cid).dedup_key()

    assert key("LOADGEN", "TEST", "MSG1") == "HL7|LOADGEN|TEST|MSG1"  # ordinary keys do not change
    assert key("DIPS", "SYK HF", "CTRL-1") == "HL7|DIPS|SYK HF|CTRL-1"
    assert key("A\x00B", "F", "1") == "HL7|A%00B|F|1"
    assert key("A|B", "C", "1") != key("A", "B|C", "1")  # an MSH-1 other than | lets a field hold |
    assert key("A%7CB", "C", "1") != key("A|B", "C", "1")
    long = key("A", "B", "X" * 1000)
    assert len(long) == MAX_KEY_CHARS and long != key("A", "B", "X" * 999)
    raw = synthetic_adt(7).replace(b"|MSG00000007|", b"|MSG\x00007|")
    t = triage(raw, adapter="a", options=OPTS, source_system=None)
    assert t.accepted and t.envelope.dedup_key == t.head.dedup_key() == "HL7|LOADGEN|TEST|MSG%00007"
