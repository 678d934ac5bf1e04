"""Opt-in strict validation of an HL7 v2 message with hl7apy (adapters with ``strict: true``).

The message is parsed by ``hl7apy.parser.parse_message`` at STRICT validation level against the
structure of its declared version (MSH-12; hl7apy knows 2.1-2.8.2), then validated. hl7apy is far
slower than the mapping itself, so this never runs unless an adapter asks for it.

:func:`validate_strict` returns problems as ``"CODE: position"`` strings (``HL7_STRICT_MISSING:
ADT_A39.EVN``, ``HL7_STRICT_TOO_LONG: PV1_3``). hl7apy's own messages quote field values, so they are
never passed on: only the exception class (-> code) and element names (-> position) are kept.
hl7apy stops at the first error, so the list has at most one entry per message today.
"""

from __future__ import annotations

import re

from engine.errors import ParseError
from mappings.hl7v2.parser import decode, parse_header, split_messages

_ELEMENT = re.compile(r"<(?:Message|Group|Segment|Field|Component|SubComponent) ([A-Z][A-Z0-9_]*)")
_TEMPLATES = (
    (re.compile(r"^Missing required child ([A-Za-z0-9_]+\.[A-Za-z0-9_]+)$"), "HL7_STRICT_MISSING"),
    (re.compile(r"^Child limit exceeded ([A-Za-z0-9_]+\.[A-Za-z0-9_]+)$"), "HL7_STRICT_TOO_MANY"),
    (re.compile(r"^Datatype \S+ is not correct for ([A-Za-z0-9_]+\.[A-Za-z0-9_]+) "), "HL7_STRICT_DATATYPE"),
)
_NAME = re.compile(r"^Invalid name for \w+: ([A-Z][A-Z0-9_]*)$")
_BY_CLASS = {
    "MaxChildLimitReached": "HL7_STRICT_TOO_MANY",
    "MaxLengthReached": "HL7_STRICT_TOO_LONG",
    "OperationNotAllowed": "HL7_STRICT_UNKNOWN_ELEMENT",
    "InvalidName": "HL7_STRICT_INVALID_NAME",
    "ChildNotValid": "HL7_STRICT_INVALID_CHILD",
    "ChildNotFound": "HL7_STRICT_INVALID_CHILD",
    "InvalidDataType": "HL7_STRICT_DATATYPE",
    "InvalidDateFormat": "HL7_STRICT_BAD_VALUE",
    "InvalidDateOffset": "HL7_STRICT_BAD_VALUE",
    "InvalidMicrosecondsPrecision": "HL7_STRICT_BAD_VALUE",
    "ValueError": "HL7_STRICT_BAD_VALUE",
    "UnsupportedVersion": "HL7_STRICT_UNSUPPORTED_VERSION",
    "InvalidEncodingChars": "HL7_STRICT_PARSE",
    "ParserError": "HL7_STRICT_PARSE",
}
#: exception classes whose text quotes a value: no position is taken from them
_VALUE_QUOTING = {
    "MaxLengthReached",
    "ValueError",
    "InvalidDateFormat",
    "InvalidDataType",
    "InvalidDateOffset",
    "InvalidMicrosecondsPrecision",
}


def describe(exc: BaseException) -> str:
    """``CODE: position`` for an hl7apy exception, with no field value in it."""
    name = type(exc).__name__
    text = str(exc)
    if name == "ValidationError":
        for pattern, code in _TEMPLATES:
            m = pattern.match(text)
            if m:
                return f"{code}: {m.group(1)}"
        return "HL7_STRICT_INVALID: structure"
    code = _BY_CLASS.get(name, "HL7_STRICT_INVALID")
    if name in ("MaxLengthReached",):
        m = _ELEMENT.search(text)
        return f"{code}: {m.group(1)}" if m else f"{code}: value"
    if name in _VALUE_QUOTING:
        return f"{code}: value"
    m = _NAME.match(text) if name == "InvalidName" else None
    if m:
        return f"{code}: {m.group(1)}"
    names = _ELEMENT.findall(text)
    return f"{code}: {names[-1]}" if names else f"{code}: message"


def _text(raw: bytes) -> str:
    first = split_messages(raw)[0]
    head = parse_header(first)
    text = decode(first, head.charset)
    return text.replace("\r\n", "\r").replace("\n", "\r").strip("\r\n\t ")


def validate_strict(raw: bytes) -> list[str]:
    """Problems of ``raw`` against its declared version's structure (empty list = valid)."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    try:
        text = _text(raw)
    except ParseError as exc:
        return [f"{exc.code}: header"]
    try:
        msg = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        msg.validate()
    except Exception as exc:  # noqa: BLE001 - hl7apy raises many types; all become codes
        return [describe(exc)]
    return []
