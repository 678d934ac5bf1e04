"""ACK construction: swapped MSH, MSA-2, ERR by version, MSH-18 echo, enhanced-mode ACK codes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.hl7_intake.ack import (
    FALLBACK,
    AckError,
    accept_codes,
    app_ack_wanted,
    build_ack,
    escape,
    is_enhanced,
    salvage_header,
)
from mappings.hl7v2.parser import parse_header

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def msg(version: str = "2.5", msh15: str = "", msh16: str = "", charset: str = "", fs: str = "|") -> bytes:
    f = [
        f"MSH{fs}^~\\&",
        "LAB",
        "OUS",
        "EPJ",
        "HOSP",
        "20240101120000",
        "",
        "ORU^R01^ORU_R01",
        "CTRL42",
        "P",
        version,
        "",
        "",
        msh15,
        msh16,
        "NO",
        charset,
    ]
    return (fs.join(f) + "\rPID|1\r").encode("latin-1")


def fields(ack: bytes, seg: str, fs: str = "|") -> list[str]:
    for line in ack.decode("latin-1").split("\r"):
        if line.startswith(seg):
            return line.split(fs)
    raise AssertionError(f"no {seg}")


def test_original_mode_aa_swaps_sender_and_receiver() -> None:
    head = parse_header(msg())
    ack = build_ack(head, "AA", control_id="ACK1", now=NOW)
    msh = fields(ack, "MSH")
    assert msh[2:6] == ["EPJ", "HOSP", "LAB", "OUS"]
    assert msh[6] == "20240506090809+0200"
    assert msh[8] == "ACK^R01^ACK" and msh[9] == "ACK1" and msh[10] == "P" and msh[11] == "2.5"
    assert fields(ack, "MSA") == ["MSA", "AA", "CTRL42"]
    assert b"ERR" not in ack and ack.endswith(b"\r")


def test_new_control_id_each_time() -> None:
    head = parse_header(msg())
    a, b = (fields(build_ack(head, "AA"), "MSH")[9] for _ in range(2))
    assert a != b and 0 < len(a) <= 20


@pytest.mark.parametrize(("version", "mtype"), [("2.2", "ACK"), ("2.3", "ACK^R01"), ("2.4", "ACK^R01^ACK")])
def test_ack_message_type_by_version(version: str, mtype: str) -> None:
    assert fields(build_ack(parse_header(msg(version)), "AA"), "MSH")[8] == mtype


def test_ar_has_err_segment_v25() -> None:
    head = parse_header(msg())
    ack = build_ack(head, "AR", error=AckError("HL7_UNSUPPORTED_TYPE", "message type X is not accepted"))
    assert fields(ack, "MSA")[1:3] == ["AR", "CTRL42"]
    err = fields(ack, "ERR")
    assert err[3] == "200^Unsupported message type^HL70357" and err[4] == "E"
    assert err[5].startswith("HL7_UNSUPPORTED_TYPE^")


def test_ae_err_segment_v23_uses_err1() -> None:
    ack = build_ack(parse_header(msg("2.3")), "AE", error=AckError("HL7_STRICT_INVALID", "2 problem(s)"))
    err = fields(ack, "ERR")
    assert len(err) == 2 and err[1].startswith("^^^207&HL7_STRICT_INVALID")


def test_msh18_echoed_and_encoding_used() -> None:
    raw = msg(charset="UNICODE UTF-8").replace(b"LAB", "LÅB".encode())
    ack = build_ack(parse_header(raw), "AA")
    assert fields(ack, "MSH")[17] == "UNICODE UTF-8"
    assert "LÅB".encode() in ack


def test_other_field_separator_kept() -> None:
    head = parse_header(msg(fs="#"))
    ack = build_ack(head, "AA")
    assert ack.startswith(b"MSH#^~\\&#EPJ#")
    assert fields(ack, "MSA", "#") == ["MSA", "AA", "CTRL42"]


def test_escape_delimiters_in_text() -> None:
    head = parse_header(msg())
    assert escape("a|b^c~d\\e&f", head) == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f"


@pytest.mark.parametrize(
    ("msh15", "msh16", "code", "expected"),
    [
        ("", "", "AA", ["AA"]),
        ("", "", "AR", ["AR"]),
        ("AL", "NE", "AA", ["CA"]),
        ("AL", "AL", "AA", ["CA", "AA"]),
        ("AL", "AL", "AR", ["CR", "AR"]),
        ("NE", "AL", "AA", ["AA"]),
        ("ER", "ER", "AA", []),
        ("ER", "ER", "AE", ["CE", "AE"]),
        ("SU", "SU", "AA", ["CA", "AA"]),
        ("SU", "SU", "AR", []),
        ("", "SU", "AA", ["CA", "AA"]),  # enhanced with empty MSH-15: commit ACK always
        ("AL", "", "AA", ["CA"]),  # empty MSH-16: no application ACK
    ],
)
def test_enhanced_mode_acks(msh15: str, msh16: str, code: str, expected: list[str]) -> None:
    """The codes sent for outcome ``code``: original mode one ACK; enhanced mode the accept ACK MSH-15 asks
    for, then the application ACK MSH-16 asks for (as the listener sends them)."""
    head = parse_header(msg(msh15=msh15, msh16=msh16))
    if not is_enhanced(head):
        assert [code] == expected
        return
    assert accept_codes(head, code) + ([code] if app_ack_wanted(head, code) else []) == expected


def test_salvage_header_of_bad_msh_keeps_control_id() -> None:
    raw = b"MSH|^~\\&|LAB|OUS|EPJ|HOSP|2024|||CTRL7|P|2.4\r"  # MSH-9 missing
    head = salvage_header(raw)
    assert head.control_id == "CTRL7" and head.version == "2.4" and head.sending_app == "LAB"
    assert fields(build_ack(head, "AR", error=AckError("HL7_BAD_MSH")), "MSA")[:3] == ["MSA", "AR", "CTRL7"]


def test_salvage_header_of_no_msh_is_fallback() -> None:
    assert salvage_header(b"PID|1||x\r") is FALLBACK
    ack = build_ack(FALLBACK, "AR", error=AckError("HL7_NO_MSH"))
    assert fields(ack, "MSA")[:3] == ["MSA", "AR", ""]


def test_err_text_passes_safe_reason_last() -> None:
    from tests.helpers import fnr

    n = fnr(12)
    head = parse_header(msg())
    ack = build_ack(head, "AE", error=AckError("HL7_BAD_MSH", f"value 'O'Hara {n}' at {n[:6]}-{n[6:]}"), now=NOW)
    text = ack.decode("latin-1")
    assert "HL7_BAD_MSH" in text and "Hara" not in text and n[:6] not in text and n[6:] not in text
