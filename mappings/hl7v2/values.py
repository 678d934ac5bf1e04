"""OBX-5 values by OBX-2 value type, OBX-6 units and OBX-7 reference ranges -> Observation fields.

* NM: a float; a leading comparator (``<5``, ``>=10``) is split off; a decimal comma is accepted;
  a value that is not a number is kept as text with the flag ``NM_NOT_NUMERIC``.
* SN: ``comparator^num1^separator^num2``: a plain or compared number -> ``value_num`` + ``comparator``;
  ratios and ranges (``1:128``, ``10-20``) -> ``value_text``.
* ST, TX, FT (and any other type): text, repetitions joined by a line break, escapes resolved
  (``\\.br\\`` -> line break).
* CE, CWE, CNE, CF: ``value_code`` (code, text, coding system as an OID where known).
* ED: ``value_code`` is the MIME type (system ``urn:ietf:bcp:13``, from ED-2/ED-3); Base64 or Hex data
  (ED-4, ED-5) is decoded once into an :class:`engine.model.Attachment` (the ``attachment`` item, for the
  caller to move to the result's attachments); data that does not decode gets the flag
  ``ATTACHMENT_DECODE_FAILED``, another encoding ``ATTACHMENT_NOT_INLINED``. RP: the pointer is the
  text, its type the MIME type.
* DT (and a TS/DTM of a date only): the value as written and ``value_date``; TM/TS/DTM: as written.
"""

from __future__ import annotations

import binascii
import re
from functools import lru_cache
from typing import Any

from engine.model import Attachment, Coding
from mappings.hl7v2 import tables
from mappings.hl7v2.message import NULL, Segment, text_of
from mappings.hl7v2.timeutil import is_date_only, parse_date
from mappings.ranges import parse_range

MIME_SYSTEM = "urn:ietf:bcp:13"
_NUM = re.compile(r"^\s*(<=|>=|<|>|=)?\s*([+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+))\s*$")
_CODED = frozenset({"CE", "CWE", "CNE", "CF", "CV"})
_DATES = frozenset({"DT", "TS", "DTM"})
_COMPARATORS = frozenset({"<", ">", "<=", ">="})
#: ED-2 type of data (HL7 table 0191) -> MIME major type
_MIME_MAJOR = {
    "AP": "application",
    "APPLICATION": "application",
    "IM": "image",
    "IMAGE": "image",
    "TX": "text",
    "TEXT": "text",
    "AU": "audio",
    "AUDIO": "audio",
    "MULTIPART": "multipart",
}


@lru_cache(maxsize=4096)
def number(text: str) -> tuple[float | None, str | None]:
    """(value, comparator) for ``12.5``, ``<5``, ``>=1,5``; (None, None) when not a number (cached)."""
    m = _NUM.match(text)
    if m is None:
        return None, None
    comp, num = m.groups()
    try:
        return float(num.replace(",", ".")), (comp if comp in _COMPARATORS else None)
    except ValueError:
        return None, None


def _sn(parts: list[list[str]]) -> dict[str, Any]:
    def c(i: int) -> str:
        return parts[i][0].strip() if i < len(parts) else ""

    comp, n1, sep, n2 = c(0), c(1), c(2), c(3)
    if sep or n2:
        return {"value_text": f"{comp}{n1}{sep}{n2}"}
    value, _ = number(n1)
    if value is None:
        return {"value_text": f"{comp}{n1}" or None}
    if comp and comp not in _COMPARATORS and comp != "=":
        return {"value_text": f"{comp}{n1}"}
    return {"value_num": value, "comparator": comp if comp in _COMPARATORS else None}


def _decode(encoding: str, data: str) -> bytes | None:
    """The bytes of ED data in ``encoding`` (ED-4: Base64 or Hex); None for another encoding. Raises
    ValueError (binascii.Error) when the data is not valid in its encoding."""
    if encoding == "BASE64":
        return binascii.a2b_base64(data, strict_mode=True)
    if encoding == "HEX":
        return bytes.fromhex(data)
    return None


def _ed(parts: list[list[str]]) -> dict[str, Any]:
    def c(i: int) -> str:
        return parts[i][0].strip() if i < len(parts) else ""

    major = _MIME_MAJOR.get(c(1).upper(), c(1).lower())
    mime = "/".join(x for x in (major, c(2).lower()) if x) or "application/octet-stream"
    out: dict[str, Any] = {"value_code": Coding(system=MIME_SYSTEM, code=mime)}
    data = parts[4][0] if len(parts) > 4 else ""
    try:
        decoded = _decode(c(3).upper(), data) if data else None
    except ValueError:
        out["flags"] = ("ATTACHMENT_DECODE_FAILED",)
        return out
    if decoded is None:
        out["flags"] = ("ATTACHMENT_NOT_INLINED",)
    else:
        out["attachment"] = Attachment.of(decoded, mime)
    return out


def _rp(parts: list[list[str]]) -> dict[str, Any]:
    pointer = parts[0][0].strip() if parts else ""
    major = parts[2][0] if len(parts) > 2 else ""
    minor = parts[3][0] if len(parts) > 3 else ""
    kind = "/".join(x for x in (_MIME_MAJOR.get(major.upper(), major.lower()), minor.lower()) if x)
    return {"value_text": pointer or None, "value_code": Coding(system=MIME_SYSTEM, code=kind) if kind else None}


def _date(text: str, vtype: str) -> dict[str, Any]:
    out: dict[str, Any] = {"value_text": text or None}
    if vtype == "DT" or is_date_only(text):
        day = parse_date(text)
        if day is not None:
            out["value_date"] = day
    return out


def _nm(text: str) -> dict[str, Any]:
    value, comp = number(text)
    if value is None:
        return {"value_text": text, "flags": ("NM_NOT_NUMERIC",)}
    return {"value_num": value, "comparator": comp}


def obx_value(obx: Segment, vtype: str) -> dict[str, Any]:
    """Observation value fields for one OBX of value type ``vtype`` (OBX-2 upper-cased; empty dict
    when OBX-5 is empty). A ``flags`` item, when present, is for the caller to move to the flags."""
    reps = obx.reps(5)
    if not reps or reps == [NULL]:
        return {}
    out: dict[str, Any]
    if vtype == "NM":
        out = _nm(text_of(reps[0], obx.d))
    elif vtype in _CODED:
        out = {"value_code": tables.coding_of(obx, 5)}
    elif vtype == "SN":
        out = _sn(obx.parts(5))
    elif vtype == "ED":
        out = _ed(obx.parts(5))
    elif vtype == "RP":
        out = _rp(obx.parts(5))
    elif vtype in _DATES:
        out = _date(text_of(reps[0], obx.d), vtype)
    elif len(reps) == 1:
        out = {"value_text": text_of(reps[0], obx.d) or None}
    else:
        out = {"value_text": "\n".join([text_of(r, obx.d) for r in reps]) or None}
    if len(reps) > 1 and vtype not in ("ST", "TX", "FT"):
        out["flags"] = (*out.get("flags", ()), "MULTIPLE_VALUES")
    return out


def unit(obx: Segment) -> str | None:
    """OBX-6 identifier, else its text."""
    return obx.get(6) or obx.get(6, 2) or None


@lru_cache(maxsize=4096)
def reference_range(text: str) -> dict[str, Any]:
    """``reference_range`` as written plus ``ref_low``/``ref_high`` by :func:`mappings.ranges.parse_range`
    (``4.3-6.2``, ``4,3 - 6,2``, ``4.3 to 6.2``, ``<5``, ``>=10``).

    Cached: callers must not mutate the returned dict.
    """
    if not text.strip():
        return {}
    out: dict[str, Any] = {"reference_range": text}
    bounds = parse_range(text)
    if bounds.low is not None:
        out["ref_low"] = bounds.low
    if bounds.high is not None:
        out["ref_high"] = bounds.high
    return out
