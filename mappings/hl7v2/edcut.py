"""A bare CR (or LF) inside an ED value (OBX-2 ``ED``, base64 data in OBX-5) cuts the OBX: rejoin it.

Senders wrap base64 at 64 or 76 characters with line breaks, or let a CR slip into the data; the
parser would read the rest of the data and the fields after it (OBX-11 status, OBX-23 performer) as
a "segment" with a nonsense id and drop them. A line that follows an ED OBX ending in OBX-5 is a continuation
of it when it does not start with a segment id and everything before its first field separator is base64
(``A-Z a-z 0-9 + / =``, possibly nothing): it is appended to the OBX's last field without the break.

When a line after such an OBX can be neither (not a segment id, not base64) the message is refused
with ``HL7_ED_CUT`` naming the segment position, and so is a base64 value whose length leaves one
character over (never valid base64) before a line with an unknown segment id: the break cannot
be told apart from a segment there.
"""

from __future__ import annotations

from engine.errors import ParseError
from mappings.hl7v2.message import Delimiters, Segment

__all__ = ["continues_ed", "is_segment_id", "join"]

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
#: segments that follow an OBX in result and document messages (Z segments are always accepted)
_AFTER_OBX = frozenset(
    "OBX NTE OBR ORC SPM SAC PID PD1 PV1 PV2 NK1 TQ1 TQ2 CTI CTD FT1 DSC TXA EVN ROL PRT TCD SID AL1 DG1 IN1"
    " MSH BHS BTS FHS FTS".split()
)


def is_segment_id(sid: str) -> bool:
    """Three upper-case ASCII letters or digits starting with a letter (``OBX``, ``ZA1``)."""
    return len(sid) == 3 and sid.isascii() and sid.isalnum() and sid.isupper() and sid[0].isalpha()


def _ends_in_ed_value(seg: Segment) -> bool:
    """An ED OBX whose last field is OBX-5: a line break inside the value would leave it so."""
    return seg.id == "OBX" and len(seg.fields) == 6 and seg.fields[2].strip().upper() == "ED"


def continues_ed(prev: Segment, head: str, position: int) -> bool:
    """True when a line whose text before the first field separator is ``head`` continues the ED OBX
    ``prev`` (see the module docstring); raises ``HL7_ED_CUT`` when it can be neither."""
    if not _ends_in_ed_value(prev):
        return False
    if is_segment_id(head):
        if head in _AFTER_OBX or head[0] == "Z" or len(_data(prev)) % 4 != 1:
            return False
        raise ParseError(f"segment {position} may be the rest of the cut ED value before it", code="HL7_ED_CUT")
    if not head.strip(_B64):
        return True
    raise ParseError(
        f"segment {position} follows an ED value and is neither a segment nor base64 data", code="HL7_ED_CUT"
    )


def _data(seg: Segment) -> str:
    """The raw text of the last field of ``seg`` after its last component separator (the data so far)."""
    return seg.fields[-1].rpartition(seg.d.component)[2]


def join(prev: Segment, parts: list[str], delims: Delimiters) -> Segment:
    """``prev`` with the continuation line ``parts`` (split at the field separator) appended."""
    fields = prev.fields
    return Segment(prev.id, [*fields[:-1], fields[-1] + parts[0], *parts[1:]], delims)
