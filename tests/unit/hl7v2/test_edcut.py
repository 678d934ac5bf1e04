"""A bare CR or LF inside a base64 ED value (OBX-5) is rejoined, or the message is refused (HL7_ED_CUT)."""

from __future__ import annotations

import base64

import pytest

from engine.errors import ParseError
from engine.model import RecordStatus
from mappings.hl7v2 import map_message
from mappings.hl7v2.parser import parse
from tests.unit.hl7v2.conftest import make_ctx, observations

PDF = b"%PDF-1.4\n%synthetic report\n" + bytes(range(256)) * 3 + b"\n%%EOF\n"
DATA = base64.b64encode(PDF).decode()
HEAD = (
    "MSH|^~\\&|LABSYS|SYKEHUSET_HF|||20260316091500||ORU^R01|NO-ED-1|P|2.5\r"
    "PID|1||13916900443^^^&2.16.578.1.12.4.1.4.1&ISO^NNNOR\r"
    "OBR|1|REK-1|LAB-1^LABSYS|PAT^Rapport^L|||20260316070000|||||||||||||||20260316090000|||F\r"
)
TAIL = "||||||C|||20260316080000|||||||||LAB^Laboratoriet"


def _oru(data: str, tail: str = TAIL) -> bytes:
    return (HEAD + f"OBX|1|ED|PDF^Rapport^L||^AP^PDF^Base64^{data}{tail}\r" + "NTE|1||Kommentar\r").encode()


def _check_whole(raw: bytes) -> None:
    msg = parse(raw)
    (obx,) = msg.all("OBX")
    assert base64.b64decode(obx.get(5, 5), validate=True) == PDF
    assert (obx.get(11), obx.get(23)) == ("C", "LAB")
    assert [s.id for s in msg.segments] == ["MSH", "PID", "OBR", "OBX", "NTE"]
    result = map_message(raw, make_ctx())
    (obs,) = observations(result)
    assert (obs.status, obs.performer) == (RecordStatus.CORRECTED, "LAB")
    (att,) = result.attachments
    assert att.data == PDF and obs.value_attachment == att.ref(description="Rapport")
    assert obs.comments == ("Kommentar",)


@pytest.mark.parametrize("cut", [1, 17, 100, len(DATA) - 1])
@pytest.mark.parametrize("brk", ["\r", "\n", "\r\n"])
def test_one_break_inside_the_data_is_rejoined(cut: int, brk: str) -> None:
    _check_whole(_oru(DATA[:cut] + brk + DATA[cut:]))


def test_mime_wrapping_every_76_characters_is_rejoined() -> None:
    wrapped = "\r".join(DATA[i : i + 76] for i in range(0, len(DATA), 76))
    _check_whole(_oru(wrapped))


def test_break_right_after_the_data_is_rejoined() -> None:
    _check_whole(_oru(DATA + "\r"))


def test_a_line_that_is_neither_segment_nor_base64_is_refused() -> None:
    with pytest.raises(ParseError) as err:
        map_message(_oru(DATA[:40] + "\rnot base64 at all" + DATA[40:]), make_ctx())
    assert err.value.code == "HL7_ED_CUT" and "segment 5" in str(err.value)


def test_a_segment_id_like_chunk_after_a_cut_value_is_refused() -> None:
    # 4n+1 characters cannot end a base64 value, and "QUJ" is no segment that follows an OBX
    data = "QUJDQUJD" + "Q"
    with pytest.raises(ParseError) as err:
        map_message(_oru(data + "\rQUJ" + TAIL), make_ctx())
    assert err.value.code == "HL7_ED_CUT"


def test_a_whole_ed_obx_before_a_segment_is_untouched() -> None:
    _check_whole(_oru(DATA))
