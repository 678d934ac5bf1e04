"""HL7 v2 mapping (v2.3-v2.8): ``map_message(raw, ctx) -> MappingResult``, dispatched by MSH-9.

Supported (MSH-9.1 ^ MSH-9.2):

* ADT A01/A02/A03/A04/A05/A06/A07/A08/A11/A13/A28/A31 -> Person + Encounter (:mod:`.adt`)
* ADT A18/A30/A34/A36/A39/A40 merge, A46/A47 identifier change, A24 link -> IdentityLinks (+ Person)
  (:mod:`.merge`)
* ORU R01 (R30/R31/R32) -> Person, Observations, Reports, Requisitions, Specimens (:mod:`.oru`)
* MDM T02/T04/T06/T08/T10/T11 -> Document (+ Person); T01/T03/T05/T07/T09 -> nothing, with a warning (:mod:`.mdm`)

Anything else raises ``UnsupportedMessage`` (``HL7_UNSUPPORTED_TYPE``, the message names the type).
Malformed input raises ``ParseError`` (``HL7_NO_MSH``, ``HL7_BAD_MSH``, ``HL7_NO_PID``, ``HL7_NO_MRG``,
``HL7_NO_TXA``, ``HL7_SEGMENTS_GLUED``) or ``ValidationError`` (``HL7_NO_PATIENT_ID``,
``HL7_NO_DOCUMENT_NUMBER``, ``HL7_STRICT_INVALID``, ``HL7_NO_RESULTS`` for an ORU without a result);
a value the canonical model rejects raises ``MappingError``
(``HL7_MAPPING_INVALID``, naming the field, never the value). A NUL byte anywhere in the bytes raises
``ParseError`` (``TEXT_NOT_STORABLE``, naming its position): it can hide a segment (``PV\x001``) or cut a
field, so nothing read from such a message is trusted.

Batches and files (FHS/BHS): every message in ``raw`` is mapped and the results are merged (records,
links, attachments and warnings concatenated, each record keeping its own MSH-10 in its provenance). One bad
message fails the whole batch, so nothing in it is half-applied or silently dropped.

Options (``ctx.options``): ``strict: true`` validates the structure with hl7apy first
(:mod:`.strict`); ``default_charset`` overrides ``ctx.charset`` when MSH-18 is empty.

Example adapter config::

    adapters:
      lab-mllp:
        type: mllp
        mapping: hl7v2
        default_charset: iso-8859-1   # when MSH-18 is empty
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pydantic

from engine.errors import MappingError, ParseError, UnsupportedMessage, ValidationError
from engine.model import MapContext, MappingResult
from mappings.hl7v2 import adt, mdm, merge, oru
from mappings.hl7v2.common import Source
from mappings.hl7v2.parser import decode, parse_header, parse_text, split_messages

#: the code of a message holding a NUL byte: the one the store gives text it cannot hold
NUL_CODE = "TEXT_NOT_STORABLE"

_Mapper = Callable[[Source], MappingResult]
_TYPE_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}(\^[A-Z][0-9A-Z]{2})?$")  # only a type code may reach a message


def _mapper(mtype: str, event: str) -> _Mapper | None:
    if mtype == "ADT":
        if event in adt.EVENTS:
            return adt.map_adt
        if event in merge.EVENTS:
            return merge.map_merge
    elif mtype == "ORU" and event in oru.EVENTS:
        return oru.map_oru
    elif mtype == "MDM" and event in mdm.EVENTS:
        return mdm.map_mdm
    return None


def _strict_check(raw: bytes) -> None:
    from mappings.hl7v2.strict import validate_strict

    problems = validate_strict(raw)
    if problems:
        raise ValidationError(
            f"{len(problems)} structure problem(s): {', '.join(problems[:5])}", code="HL7_STRICT_INVALID"
        )


def map_one(raw: bytes, ctx: MapContext) -> MappingResult:
    """Map a single message (the first, when ``raw`` holds several)."""
    default = str(ctx.options.get("default_charset") or ctx.charset or "iso-8859-1")
    head = parse_header(raw, default)
    fn = _mapper(head.message_type, head.trigger_event)
    if fn is None:
        name = head.type_name if _TYPE_NAME.match(head.type_name) else "(unreadable MSH-9)"
        raise UnsupportedMessage(f"message type {name} is not supported", code="HL7_UNSUPPORTED_TYPE")
    if ctx.options.get("strict"):
        _strict_check(raw)
    msg = parse_text(decode(raw, head.charset, default))
    try:
        return fn(Source.of(msg, ctx))
    except pydantic.ValidationError as exc:  # a model rejected a mapped value: report where, never what
        where = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False)})
        raise MappingError(f"canonical model rejected {', '.join(where)}", code="HL7_MAPPING_INVALID") from None


def merge_results(results: list[MappingResult]) -> MappingResult:
    """One result for a batch: records, links, attachments and warnings concatenated (duplicates removed)."""
    if len(results) == 1:
        return results[0]
    types = {r.message_type for r in results}
    return MappingResult(
        records=tuple(dict.fromkeys(r for res in results for r in res.records)),
        links=tuple(dict.fromkeys(lnk for res in results for lnk in res.links)),
        attachments=tuple(dict.fromkeys(a for res in results for a in res.attachments)),
        warnings=tuple(dict.fromkeys(w for res in results for w in res.warnings)),
        message_type=types.pop() if len(types) == 1 else "BATCH",
        source_message_id=None,
    )


def map_message(raw: bytes, ctx: MapContext) -> MappingResult:
    """Map one HL7 v2 message, or every message of a batch/file (see the module docstring)."""
    nul = raw.find(b"\x00")
    if nul >= 0:  # it may hide a segment or cut a field anywhere: nothing read from such bytes is trusted
        raise ParseError(f"a NUL byte at byte {nul}: HL7 v2 text cannot hold it", code=NUL_CODE)
    if raw.count(b"MSH") == 1 and raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:3] == b"MSH":
        return map_one(raw, ctx)  # fast path: one plain message (no batch header or comment line first)
    messages = split_messages(raw)
    if len(messages) == 1:
        return map_one(messages[0], ctx)
    return merge_results([map_one(m, ctx) for m in messages])
