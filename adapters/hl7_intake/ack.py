"""HL7 v2 acknowledgements (ACK): original and enhanced mode (the MLLP listener sends them; triage uses
the same error type and header salvage).

The ACK answers one received message:

* MSH: sender and receiver swapped (MSH-3/4 <- MSH-5/6 and back), a new MSH-10, the message's
  delimiters, MSH-11 and MSH-12 echoed, MSH-9 ``ACK^<trigger>^ACK`` (``ACK^<trigger>`` before 2.4,
  ``ACK`` before 2.3), MSH-18 echoed (the ACK is encoded in that character set).
* MSA-1 the code, MSA-2 the message's MSH-10, MSA-3 a short text on errors (codes only).
* ERR on AE/AR/CE/CR: HL7 table 0357 code, severity ``E`` and our stable reason code
  (2.5+: ERR-3/4/5/8; older versions: ERR-1 with the code in component 4).

Mode (HL7 v2 chapter 2): MSH-15 and MSH-16 both empty -> original mode, one AA/AE/AR. Otherwise
enhanced mode: a commit ACK (CA/CE/CR) as MSH-15 asks (AL always, empty = AL, SU on success,
ER on error, NE never), then an application ACK (AA/AE/AR) only as MSH-16 asks (empty = none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from engine.errors import ParseError
from engine.ids import log_safe
from engine.randomid import random_bytes
from engine.redact import safe_reason
from engine.rejection import Rejection
from mappings.hl7v2.parser import MshHeader, codec_for, msh_fields

OSLO = ZoneInfo("Europe/Oslo")

#: our reason codes -> HL7 table 0357 (message error condition codes)
HL7_ERROR_CODES: dict[str, tuple[str, str]] = {
    "HL7_NO_MSH": ("100", "Segment sequence error"),
    "HL7_BAD_MSH": ("102", "Data type error"),
    "HL7_UNSUPPORTED_TYPE": ("200", "Unsupported message type"),
    "MLLP_FRAME_TOO_LARGE": ("207", "Application internal error"),
    "HL7_NO_PID": ("100", "Segment sequence error"),
    "HL7_NO_MRG": ("100", "Segment sequence error"),
    "HL7_NO_PATIENT_ID": ("101", "Required field missing"),
}
_DEFAULT_HL7_ERROR = ("207", "Application internal error")
_COMMIT = {"AA": "CA", "AE": "CE", "AR": "CR"}

#: used when a message has no readable MSH at all
FALLBACK = MshHeader(
    field_sep="|",
    encoding_chars="^~\\&",
    sending_app="",
    sending_facility="",
    receiving_app="",
    receiving_facility="",
    timestamp="",
    message_type="",
    trigger_event="",
    structure="",
    control_id="",
    processing_id="P",
    version="2.5",
    accept_ack_type=None,
    app_ack_type=None,
    charset=None,
)


@dataclass(frozen=True, slots=True)
class AckError:
    """Why a message was not accepted: a stable code and a short text without field values."""

    code: str
    text: str = ""

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.safe_text}" if self.text else self.code

    @property
    def safe_text(self) -> str:
        """The text as the ACK carries it: quoted values dropped, long digit runs masked (last step)."""
        return safe_reason(self.text)

    def rejection(self) -> Rejection:
        """The envelope's rejection: the code, and the text as the ACK carries it."""
        return Rejection(code=self.code, text=self.safe_text)


def codec(charset: str | None, default: str) -> str:
    """The Python codec for MSH-18 (``default`` when unknown or malformed, never raises)."""
    try:
        return codec_for(charset, default)
    except (LookupError, ValueError):  # e.g. a NUL inside MSH-18
        return default


def is_enhanced(head: MshHeader) -> bool:
    return head.accept_ack_type is not None or head.app_ack_type is not None


def _wants(ack_type: str | None, ok: bool, default: str) -> bool:
    kind = (ack_type or default).upper()
    return kind == "AL" or (kind == "SU" and ok) or (kind == "ER" and not ok)


def accept_codes(head: MshHeader, code: str) -> list[str]:
    """Enhanced mode: the accept ACK (CA/CE/CR for ``code`` AA/AE/AR) if MSH-15 asks for it (empty: AL)."""
    return [_COMMIT[code]] if _wants(head.accept_ack_type, code == "AA", "AL") else []


def app_ack_wanted(head: MshHeader, code: str | None = None) -> bool:
    """Enhanced mode: whether MSH-16 asks for an application ACK with outcome ``code`` (None: for any
    outcome, i.e. not NE or empty)."""
    if code is None:
        return (head.app_ack_type or "NE").upper() in ("AL", "ER", "SU")
    return _wants(head.app_ack_type, code == "AA", "NE")


def _version(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in v.split(".")[:3])
    except ValueError:
        return (2, 5)


def _ack_type(head: MshHeader, cs: str) -> str:
    v = _version(head.version)
    if v >= (2, 4) and head.trigger_event:
        return f"ACK{cs}{head.trigger_event}{cs}ACK"
    if v >= (2, 3) and head.trigger_event:
        return f"ACK{cs}{head.trigger_event}"
    return "ACK"


def escape(text: str, head: MshHeader) -> str:
    """HL7-escape ``text`` with the message's delimiters."""
    enc = head.encoding_chars + "^~\\&"[len(head.encoding_chars) :]
    esc = enc[2]
    out = text.replace(esc, f"{esc}E{esc}")
    for ch, tag in ((head.field_sep, "F"), (enc[0], "S"), (enc[1], "R"), (enc[3], "T")):
        if ch:
            out = out.replace(ch, f"{esc}{tag}{esc}")
    return out.replace("\r", " ").replace("\n", " ")


def _err_segment(head: MshHeader, err: AckError, fs: str, cs: str) -> str:
    hl7_code, hl7_text = HL7_ERROR_CODES.get(err.code, _DEFAULT_HL7_ERROR)
    text = escape(err.safe_text, head)
    if _version(head.version) >= (2, 5):
        return fs.join(
            ["ERR", "", "", cs.join([hl7_code, hl7_text, "HL70357"]), "E", cs.join([err.code, text, "L"]), "", "", text]
        )
    sub = head.encoding_chars[3] if len(head.encoding_chars) > 3 else "&"
    return fs.join(["ERR", cs.join(["", "", "", sub.join([hl7_code, f"{err.code} {text}".strip(), "HL70357"])])])


def new_control_id() -> str:
    """20 hex characters (MSH-10 is at most 20 characters before v2.7)."""
    return log_safe(random_bytes(10).hex())


def build_ack(
    head: MshHeader,
    code: str,
    *,
    error: AckError | None = None,
    control_id: str | None = None,
    now: datetime | None = None,
    default_charset: str = "iso-8859-1",
) -> bytes:
    """Encode one ACK message (segments terminated by CR, no MLLP framing)."""
    fs = head.field_sep
    cs = head.encoding_chars[0] if head.encoding_chars else "^"
    stamp = (now or datetime.now(OSLO)).astimezone(OSLO).strftime("%Y%m%d%H%M%S%z")
    msh = [
        "MSH",
        head.encoding_chars,
        head.receiving_app,
        head.receiving_facility,
        head.sending_app,
        head.sending_facility,
        stamp,
        "",
        _ack_type(head, cs),
        control_id or new_control_id(),
        head.processing_id or "P",
        head.version or "2.5",
    ]
    if head.charset:
        msh += ["", "", "", "", "", head.charset]
    segments = [fs.join(msh)]
    msa = ["MSA", code, head.control_id]
    if error is not None:
        msa.append(escape(error.reason, head))
    segments.append(fs.join(msa))
    if error is not None and code not in ("AA", "CA"):
        segments.append(_err_segment(head, error, fs, cs))
    text = "\r".join(segments) + "\r"
    return text.encode(codec(head.charset, default_charset), errors="replace")


def salvage_header(raw: bytes) -> MshHeader:
    """Best effort for a message whose MSH failed to parse: delimiters, MSH-3..6/10/12, else defaults."""
    start = raw.find(b"MSH", 0, 16)
    if start < 0:
        return FALLBACK
    line = raw[start:].split(b"\r", 1)[0].split(b"\n", 1)[0].decode("iso-8859-1")
    try:
        f = msh_fields(line)
    except (ParseError, IndexError, ValueError):
        return FALLBACK
    cs = f[2][:1] or "^"

    def comp(i: int) -> str:
        return f[i].split(cs, 1)[0].strip() if i < len(f) else ""

    return MshHeader(
        field_sep=f[1],
        encoding_chars=f[2],
        sending_app=comp(3),
        sending_facility=comp(4),
        receiving_app=comp(5),
        receiving_facility=comp(6),
        timestamp="",
        message_type=comp(9),
        trigger_event="",
        structure="",
        control_id=f[10].strip() if len(f) > 10 else "",
        processing_id=comp(11) or "P",
        version=comp(12) or "2.5",
        accept_ack_type=None,
        app_ack_type=None,
        charset=None,
    )
