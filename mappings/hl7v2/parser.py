"""HL7 v2 (2.1-2.8) framing: header peek, batch/file splitting, charset decoding, full parse.

Stable API (used by the MLLP listener and the HL7 file adapter):

* :func:`parse_header` reads only the first MSH segment (cheap, hot path) into :class:`MshHeader`.
* :func:`split_messages` splits a file or FHS/BHS batch into messages (framing removed, blank and
  ``//`` and ``/* ... */`` comment lines dropped, segment separators normalised to CR, one message per MSH).
* :func:`decode` turns MSH-18 names (``8859/1``, ``UNICODE UTF-8``, ``UNICODE``, ``ASCII`` ...) into a
  Python codec and decodes, stripping a BOM; bytes outside the declared charset (UTF-8 or Windows-1252
  declared as Latin-1, ...) are decoded with the charset that fits them, never into C1 control
  characters (the rule of :mod:`mappings.charset`; :func:`decode_checked` also says whether it had to
  repair, :func:`repair_flag` only that, cheaply).
* :func:`parse` builds a :class:`~mappings.hl7v2.message.Message`; :func:`serialise` writes one back.
  A line break inside a base64 ED value (OBX-5) is rejoined, or refused with ``HL7_ED_CUT``
  (:mod:`mappings.hl7v2.edcut`).

Errors are :class:`engine.errors.ParseError` with codes ``HL7_NO_MSH`` / ``HL7_BAD_MSH`` / ``HL7_ED_CUT`` and never
quote field values.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from engine.errors import ParseError
from mappings import charset as charset_rule
from mappings.charset import Decoded
from mappings.hl7v2 import edcut
from mappings.hl7v2.batch import Splitter
from mappings.hl7v2.message import Delimiters, Message, Segment, delimiters_from_msh2

_BOM8 = b"\xef\xbb\xbf"
_FRAMING = ("FHS", "BHS", "BTS", "FTS")

#: MSH-18 character set names (HL7 table 0211 and common variants) -> Python codecs.
CHARSETS: dict[str, str] = {
    "ASCII": "ascii",
    "US-ASCII": "ascii",
    "8859/1": "iso-8859-1",
    "8859/2": "iso-8859-2",
    "8859/3": "iso-8859-3",
    "8859/4": "iso-8859-4",
    "8859/5": "iso-8859-5",
    "8859/6": "iso-8859-6",
    "8859/7": "iso-8859-7",
    "8859/8": "iso-8859-8",
    "8859/9": "iso-8859-9",
    "8859/15": "iso-8859-15",
    "ISO-8859-1": "iso-8859-1",
    "ISO8859-1": "iso-8859-1",
    "ISO-8859-15": "iso-8859-15",
    "LATIN1": "iso-8859-1",
    "CP1252": "cp1252",
    "WINDOWS-1252": "cp1252",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
}


#: characters escaped in a dedup key: controls (a NUL cannot be stored in PostgreSQL text), lone surrogates
#: (not encodable), the key's own separator (MSH-3/4/10 may hold ``|`` when MSH-1 is another character)
#: and the escape character itself
_KEY_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff%|]")
#: the stored key's column width; a longer key keeps its start and ends in a hash of the whole key
MAX_KEY_CHARS = 400


def _escape_key_part(value: str) -> str:
    return _KEY_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", value)  # e.g. NUL -> %00, U+D800 -> %D800


@dataclass(frozen=True, slots=True)
class MshHeader:
    """The routing facts of one message, read from its MSH segment (HL7 positions in comments)."""

    field_sep: str  # MSH-1
    encoding_chars: str  # MSH-2
    sending_app: str  # MSH-3.1
    sending_facility: str  # MSH-4.1
    receiving_app: str  # MSH-5.1
    receiving_facility: str  # MSH-6.1
    timestamp: str  # MSH-7.1
    message_type: str  # MSH-9.1
    trigger_event: str  # MSH-9.2
    structure: str  # MSH-9.3
    control_id: str  # MSH-10
    processing_id: str  # MSH-11.1
    version: str  # MSH-12.1
    accept_ack_type: str | None  # MSH-15
    app_ack_type: str | None  # MSH-16
    charset: str | None  # MSH-18 (first repetition)

    def dedup_key(self) -> str:
        """``HL7|<MSH-3>|<MSH-4>|<MSH-10>``, the sender's key of this message as it is stored.

        Control characters, lone surrogates, ``|`` and ``%`` in the three fields are percent-escaped
        (``%00``), so any key can be stored and two different headers never give the same key; a key
        longer than :data:`MAX_KEY_CHARS` keeps its first characters and ends in ``%~`` and a hash of the
        whole key. An ordinary key is the three fields as they are.
        """
        parts: tuple[str, ...] = (self.sending_app, self.sending_facility, self.control_id)
        if _KEY_UNSAFE.search("".join(parts)):
            parts = tuple(_escape_key_part(v) for v in parts)
        key = f"HL7|{parts[0]}|{parts[1]}|{parts[2]}"
        if len(key) <= MAX_KEY_CHARS:
            return key
        return key[: MAX_KEY_CHARS - 34] + "%~" + hashlib.sha256(key.encode()).hexdigest()[:32]

    @property
    def type_name(self) -> str:
        """``ADT^A08`` (or just ``ADT`` when the trigger is missing)."""
        return f"{self.message_type}^{self.trigger_event}" if self.trigger_event else self.message_type


@lru_cache(maxsize=256)
def codec_for(charset: str | None, default: str = "iso-8859-1") -> str:
    """The Python codec for an MSH-18 value (unknown or empty -> ``default``; cached)."""
    if not charset or not charset.strip():
        return default
    name = charset.strip().upper()
    if name in CHARSETS:
        return CHARSETS[name]
    return charset_rule.canonical(name) or default


def decode(raw: bytes, charset: str | None, default: str = "iso-8859-1") -> str:
    """Decode ``raw`` by its MSH-18 ``charset`` (else ``default``); see :func:`decode_checked`."""
    return decode_checked(raw, charset, default).text


def decode_checked(raw: bytes, charset: str | None, default: str = "iso-8859-1") -> Decoded:
    """Decode ``raw`` by its MSH-18 ``charset`` (else ``default``), and say whether the bytes fitted it.

    The rule is :func:`mappings.charset.decode_checked`, the same for every adapter and the mapping, so
    replay gives the same text. :attr:`Decoded.repaired` says it chose another codec than the declared
    one (the HL7 adapters set the envelope attribute ``charset_repaired``, :func:`repair_flag`).
    """
    return charset_rule.decode_checked(raw, codec_for(charset, codec_for(default)))


def repair_flag(raw: bytes, charset: str | None, default: str = "iso-8859-1") -> str | None:
    """``<declared>-><used>`` when ``raw`` does not fit its MSH-18 ``charset`` (else ``default``), else None;
    cheap when it fits (:func:`mappings.charset.fits`)."""
    return charset_rule.repair_flag(raw, codec_for(charset, codec_for(default)))


def _first_msh(raw: bytes) -> bytes:
    """The bytes of the first MSH segment (BOM, whitespace and batch header lines skipped)."""
    data = raw[3:] if raw.startswith(_BOM8) else raw
    start = 0
    n = len(data)
    while start < n:
        while start < n and data[start] in b" \t\r\n\x0b\x1c\x00":
            start += 1
        if data.startswith(b"MSH", start):
            break
        if data[start : start + 3] in (b"FHS", b"BHS"):
            nxt = min((i for i in (data.find(b"\r", start), data.find(b"\n", start)) if i >= 0), default=-1)
            if nxt < 0:
                break
            start = nxt
            continue
        raise ParseError("message does not start with an MSH segment", code="HL7_NO_MSH")
    if not data.startswith(b"MSH", start):
        raise ParseError("no MSH segment found", code="HL7_NO_MSH")
    ends = [i for i in (data.find(b"\r", start), data.find(b"\n", start)) if i >= 0]
    return data[start : min(ends)] if ends else data[start:]


def _comp(fields: list[str], idx: int, comp_sep: str) -> str:
    return fields[idx].partition(comp_sep)[0] if idx < len(fields) else ""


def _opt(fields: list[str], idx: int, comp_sep: str, rep_sep: str) -> str | None:
    """First component of the first repetition, stripped; None when empty."""
    if idx >= len(fields):
        return None
    return fields[idx].partition(comp_sep)[0].partition(rep_sep)[0].strip() or None


@lru_cache(maxsize=64)
def _check_delimiters(fs: str, enc: str) -> None:
    """Raises ``HL7_BAD_MSH`` for unusable delimiters (cached: a source keeps its delimiters)."""
    chars = fs + enc[:4]
    if fs.isalnum() or fs.isspace() or len(enc) < 2 or len(set(chars)) != len(chars):
        raise ParseError("MSH-1/MSH-2 delimiters are invalid", code="HL7_BAD_MSH")
    if any(c.isalnum() or c.isspace() for c in enc[:4]):
        raise ParseError("MSH-2 encoding characters are invalid", code="HL7_BAD_MSH")


def msh_fields(line: str) -> list[str]:
    """MSH split into fields indexed by HL7 position: ``fields[1]`` is MSH-1, ``fields[9]`` MSH-9."""
    if len(line) < 8 or not line.startswith("MSH"):
        raise ParseError("MSH segment too short", code="HL7_BAD_MSH")
    fs = line[3]
    parts = line.split(fs)
    enc = parts[1]
    _check_delimiters(fs, enc)
    return ["MSH", fs, *parts[1:]]


def header_from_fields(f: list[str]) -> MshHeader:
    """Build an :class:`MshHeader` from :func:`msh_fields` output; raises ``HL7_BAD_MSH``."""
    enc = f[2]
    cs = enc[0]
    rs = enc[1] if len(enc) > 1 else "~"
    mtype = f[9].split(cs) if len(f) > 9 else [""]
    control = f[10].strip() if len(f) > 10 else ""
    if not mtype[0].strip() or not control:
        raise ParseError("MSH-9 message type or MSH-10 control id missing", code="HL7_BAD_MSH")
    return MshHeader(
        field_sep=f[1],
        encoding_chars=enc,
        sending_app=_comp(f, 3, cs),
        sending_facility=_comp(f, 4, cs),
        receiving_app=_comp(f, 5, cs),
        receiving_facility=_comp(f, 6, cs),
        timestamp=_comp(f, 7, cs),
        message_type=mtype[0].strip().upper(),
        trigger_event=(mtype[1].strip().upper() if len(mtype) > 1 else ""),
        structure=(mtype[2].strip().upper() if len(mtype) > 2 else ""),
        control_id=control,
        processing_id=_comp(f, 11, cs),
        version=_comp(f, 12, cs).strip(),
        accept_ack_type=_opt(f, 15, cs, rs),
        app_ack_type=_opt(f, 16, cs, rs),
        charset=_opt(f, 18, cs, rs),
    )


def parse_header(raw: bytes, default_charset: str = "iso-8859-1") -> MshHeader:
    """Read the MSH of ``raw`` (only the first segment); raises ``HL7_NO_MSH`` / ``HL7_BAD_MSH``."""
    seg = _first_msh(raw)
    line = seg.decode("iso-8859-1")
    head = header_from_fields(msh_fields(line))
    if not seg.isascii():
        text = decode(seg, head.charset, default_charset)
        head = header_from_fields(msh_fields(text))
    return head


def split_messages(raw: bytes) -> list[bytes]:
    """Split a file or batch into messages, each starting with MSH, segments joined by CR.

    FHS/BHS/BTS/FTS framing, blank lines and ``//`` / ``/* ... */`` comment lines are dropped; MLLP framing bytes
    (VT/FS) left around a message are stripped (:class:`mappings.hl7v2.batch.Splitter`, which a file
    adapter uses block by block with the batch checks). Raises ``HL7_NO_MSH`` when no MSH is present,
    and the code of a message the batch checks found cut (``HL7_BATCH_TRUNCATED``: the message left open
    where a FHS/BHS file ends without its trailer), which is never mapped.
    """
    splitter = Splitter()
    pieces = splitter.feed(raw) + splitter.finish()
    if not pieces:
        raise ParseError("no MSH segment found", code="HL7_NO_MSH")
    for p in pieces:
        if p.problem is not None:
            raise ParseError(p.problem.split(": ", 1)[-1], code=p.code or "HL7_BATCH_TRUNCATED")
    return [p.raw for p in pieces]


def parse(raw: bytes, default_charset: str = "iso-8859-1") -> Message:
    """Parse one message (the first, when ``raw`` is a batch) into a :class:`Message`.

    Segments may be separated by CR, LF or CRLF; a BOM, leading whitespace and batch header lines
    are tolerated. Values are unescaped lazily when read.
    """
    head = parse_header(raw, default_charset)
    text = decode(raw, head.charset, default_charset)
    return parse_text(text)


def parse_text(text: str) -> Message:
    """Parse decoded text (see :func:`parse`)."""
    text = text.lstrip("\ufeff")
    start = text.find("MSH")
    if start < 0:
        raise ParseError("no MSH segment found", code="HL7_NO_MSH")
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    lines = text[start:].split("\r")
    f = msh_fields(lines[0])
    delims = delimiters_from_msh2(f[1], f[2])
    fs = delims.field
    segments = [Segment("MSH", f, delims)]
    for line in lines[1:]:
        tag = line[:3]
        if tag == "MSH":
            break  # the next message of a batch
        if not line or tag in _FRAMING or line.isspace():
            continue
        parts = line.split(fs)
        sid = parts[0].strip()
        prev = segments[-1]
        # an OBX cut inside OBX-5 has six fields (id, OBX-1..5): one length test skips the usual OBX
        if len(prev.fields) == 6 and edcut.continues_ed(prev, parts[0], len(segments) + 1):
            segments[-1] = edcut.join(prev, parts, delims)
            continue
        segments.append(Segment(sid, parts, delims))
    return Message(delims, segments)


def serialise(message: Message, charset: str = "utf-8") -> bytes:
    """Write ``message`` back as bytes, segments terminated by CR, encoded with ``charset``."""
    return message.to_text().encode(charset)


__all__ = [
    "CHARSETS",
    "Decoded",
    "Delimiters",
    "Message",
    "MshHeader",
    "Segment",
    "codec_for",
    "decode",
    "decode_checked",
    "header_from_fields",
    "msh_fields",
    "parse",
    "parse_header",
    "parse_text",
    "repair_flag",
    "serialise",
    "split_messages",
]
