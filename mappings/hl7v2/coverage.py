"""Coverage support of the HL7 v2 mapping (:mod:`engine.coverage`): the leaves of a message and what the
mapping declares.

Leaves: every non-empty component of every field of every segment, unescaped, at ``SEG-f.c`` (``PID-5.2``),
and ``SEG-f.c.s`` for the sub-components of a component that has them (``PID-3.4.1``); repetitions and the
segment's position are not in the path. MSH-1 and MSH-2 (the delimiters) are leaves of their own. Every
message of a batch is read; batch and file framing segments (FHS, BHS, BTS, FTS) are leaves too.

:data:`MAPPED` lists the positions whose values the mapping transforms beyond recognition (codes to enums,
coding system names to OIDs); a time needs no declaration, it is found in its ISO form. :data:`COPIED`
lists the positions whose short values (a flag ``H``, a unit ``%``) count when they equal a whole value
of the result. :data:`IGNORED` lists the routing and transport positions, each with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.coverage import Declarations
from engine.model import MapContext
from mappings.hl7v2.escape import unescape
from mappings.hl7v2.message import NULL, Delimiters, Segment
from mappings.hl7v2.parser import decode, parse_header, parse_text, split_messages

__all__ = ["COPIED", "IGNORED", "MAPPED", "declarations", "leaves"]

_FRAMING = ("FHS", "BHS", "BTS", "FTS")
#: segments whose fields 1 and 2 are the delimiters
_HEADERS = ("MSH", "FHS", "BHS")

#: positions whose values the mapping reads and re-expresses (so their text is not in the result)
MAPPED: dict[str, str] = {
    "MSH-18": "character set: the text is decoded by it",
    "PID-8": "administrative sex (male/female/other/unknown)",
    "PID-30": "death indicator: deceased_at",
    "PV1-2": "patient class (encounter_class)",
    "OBR-25": "result status (record status)",
    "OBX-11": "result status (record status)",
    "TXA-17": "completion status (record status)",
    "TXA-19": "availability status (record status)",
    "TXA-2.3": "coding system name (an OID by HL7 table 0396)",
    "OBX-3.3": "coding system name (an OID by HL7 table 0396)",
    "OBX-5.3": "coding system of a coded value (an OID by HL7 table 0396)",
    "OBR-4.3": "coding system name of the report code (an OID by HL7 table 0396)",
    "PID-2.4": "assigning authority: the identifier's system",
    "PID-2.5": "identifier type: the identifier's kind",
    "PID-2.6": "assigning facility: the identifier's scope",
    "PID-3.4": "assigning authority: the identifier's system",
    "PID-3.5": "identifier type: the identifier's kind (FNR, DNR, HNR ...)",
    "PID-3.6": "assigning facility: the identifier's scope",
    "PID-4.4": "assigning authority: the identifier's system",
    "PID-4.5": "identifier type: the identifier's kind",
    "PID-4.6": "assigning facility: the identifier's scope",
    "MRG-1.4": "assigning authority: the identifier's system",
    "MRG-1.5": "identifier type: the identifier's kind",
    "MRG-1.6": "assigning facility: the identifier's scope",
    "PID-5.7": "name type: picks the legal name (L) among the repetitions",
    "PID-11.7": "address type: picks the home address (H) among the repetitions",
}

#: positions whose value the mapping copies whole: a one-character value there counts when it equals a
#: whole value of the result
COPIED: dict[str, str] = {
    "OBX-5": "the result value (value_num, value_text, value_code)",
    "OBX-6": "units",
    "OBX-7": "reference range",
    "OBX-8": "abnormal flags",
}

#: routing and transport positions: who sent it to whom and how, not what it says about the patient
IGNORED: dict[str, str] = {
    "MSH-1": "field delimiter of the message itself",
    "MSH-2": "encoding characters of the message itself",
    "MSH-5": "receiving application: routing",
    "MSH-6": "receiving facility: routing",
    "MSH-7": "time the message was made: transport (the event time is read from EVN, OBR and OBX; MSH-7 "
    "stands in only when they carry none)",
    "MSH-8": "security: transport",
    "OBX-2": "data type of OBX-5: syntax (how the value is read; kept as value_type where a record has one)",
    "MSH-9.3": "message structure id: syntax (the type and event are read)",
    "MSH-11": "processing id (production/test): transport",
    "MSH-12": "HL7 version: syntax",
    "MSH-13": "sequence number: transport",
    "MSH-14": "continuation pointer: transport",
    "MSH-15": "accept acknowledgement type: transport",
    "MSH-16": "application acknowledgement type: transport",
    "MSH-17": "country code of the message: syntax",
    "MSH-19": "principal language of the message: syntax",
    "MSH-20": "alternate character set handling: syntax",
    "MSH-21": "message profile id: syntax",
    "FHS": "file header: transport framing",
    "BHS": "batch header: transport framing",
    "BTS": "batch trailer: transport framing",
    "FTS": "file trailer: transport framing",
    "PID-1": "set id: a segment counter",
    "OBR-1": "set id: a segment counter",
    "OBX-1": "set id: a segment counter",
    "NTE-1": "set id: a segment counter",
    "AL1-1": "set id: a segment counter",
    "DG1-1": "set id: a segment counter",
    "PV1-1": "set id: a segment counter",
    "NK1-1": "set id: a segment counter",
    "IN1-1": "set id: a segment counter",
    "SPM-1": "set id: a segment counter",
    "OBR-11": "specimen action code (add, pending, lab to collect): order workflow, not the result",
    "OBR-23": "charge to practice: billing",
    "PID-18": "patient account number: billing",
    "SPM-20": "specimen availability (Y/N): lab logistics",
    "SPM-26": "number of specimen containers: lab logistics",
    "ORC-1": "order control (NW/RE...): message syntax of the order, not its content",
}


# --- ADT, MDM and the other non-ORU messages (PV1, ROL, DG1, insurance, software) ---
_BILLING = "billing/insurance, not part of the clinical journal in Norway (HELFO pays; no private insurer)"
IGNORED.update(
    {
        "IN1": _BILLING,
        "IN2": _BILLING,
        "IN3": _BILLING,
        "GT1": _BILLING,
        **{f"PV1-{f}": _BILLING for f in (*range(20, 36), 41, 46, 47, 48, 49)},
        "SFT": "software segment: the sending system's product and version, transport",
        "MSH-3": "sending application: routing (the sending facility scopes the keys)",
        "EVN-1": "event type code: the event of MSH-9.2 again (syntax)",
        "ROL-1": "role instance id: a segment counter",
        "ROL-2": "action code (add/update/delete): message syntax of the role, not its content",
        "PR1-1": "set id: a segment counter",
        "PV2-1": "set id: a segment counter",
        "PID-18": "patient account number: " + _BILLING,
        "PR1-2": "procedure coding method: syntax (the coding system is read from PR1-3.3)",
        "DG1-2": "diagnosis coding method: syntax (the coding system is read from DG1-3.3)",
        **{f"DG1-{f}": "DRG grouping (major diagnostic category, DRG, outliers): " + _BILLING for f in range(7, 14)},
    }
)
MAPPED.update(
    {
        "PV1-7.9": "assigning authority: the practitioner id's system",
        "PV1-7.13": "identifier type: the practitioner id's kind",
        "PV1-8.9": "assigning authority: the practitioner id's system",
        "PV1-8.13": "identifier type: the practitioner id's kind",
        "PV1-9.9": "assigning authority: the practitioner id's system",
        "PV1-9.13": "identifier type: the practitioner id's kind",
        "PV1-17.9": "assigning authority: the practitioner id's system",
        "PV1-17.13": "identifier type: the practitioner id's kind",
        "ROL-4.9": "assigning authority: the practitioner id's system",
        "ROL-4.13": "identifier type: the practitioner id's kind",
        "ROL-3.1": "role code: the party's role",
        "AL1-2": "allergen type (HL7 table 0127 -> the Allergy's category)",
        "AL1-3.3": "coding system name (an OID by HL7 table 0396)",
        "AL1-4": "allergy severity (HL7 table 0128 -> mild/moderate/severe)",
        "PR1-3.3": "coding system name (an OID by HL7 table 0396)",
        **{f"PR1-{f}.{c}": "practitioner id's system / kind" for f in (8, 11, 12) for c in (9, 13)},
        "PID-16": "marital status (HL7 table 0002 -> single/married/...)",
        "DG1-3.3": "coding system name (an OID by HL7 table 0396)",
        "DG1-6": "diagnosis type (A/W preliminary, F final: the Condition's status)",
        "DG1-15": "diagnosis priority (1 main, else secondary: the Condition's role)",
        "DG1-16.9": "assigning authority: the practitioner id's system",
        "DG1-16.13": "identifier type: the practitioner id's kind",
    }
)
COPIED.update(
    {
        "PV1-4": "admission type (admission_type)",
        "PV1-36": "discharge disposition",
        "PV1-10": "hospital service (hospital_service)",
        "PV1-14": "admit source (admit_source)",
        "NK1-3": "relationship",
        "NK1-7": "contact role",
    }
)


def declarations(ctx: MapContext) -> Declarations:
    """The HL7 declarations (the same for every context)."""
    return _DECLARATIONS


_DECLARATIONS = Declarations(mapped=MAPPED, ignored=IGNORED, copied=COPIED)


def leaves(raw: bytes, ctx: MapContext) -> Iterator[tuple[str, str]]:
    """Every non-empty (path, value) of ``raw``: framing lines first, then each message's segments."""
    default = str(ctx.options.get("default_charset") or ctx.charset or "iso-8859-1")
    yield from _framing(raw)
    for one in split_messages(raw):
        head = parse_header(one, default)
        msg = parse_text(decode(one, head.charset, default))
        for seg in msg.segments:
            yield from _segment(seg)


def _framing(raw: bytes) -> Iterator[tuple[str, str]]:
    """Leaves of FHS/BHS/BTS/FTS lines (delimiters as ``|^~\\&``: framing carries no escaped text)."""
    if not any(tag in raw for tag in (b"FHS", b"BHS", b"BTS", b"FTS")):
        return
    d = Delimiters()
    for line in raw.decode("iso-8859-1").replace("\n", "\r").split("\r"):
        line = line.strip(" \t\x0b\x1c\ufeff\xef\xbb\xbf")
        tag = line[:3]
        if tag in _FRAMING and len(line) > 3:
            fs = line[3]
            parts = line.split(fs)
            fields = [tag, fs, *parts[1:]] if tag in _HEADERS else parts
            yield from _segment(Segment(tag, fields, d))


def _segment(seg: Segment) -> Iterator[tuple[str, str]]:
    d, sid = seg.d, seg.id
    start = 1
    if sid in _HEADERS:  # fields[1] and fields[2] are the delimiters, never split
        yield from ((f"{sid}-{f}", seg.fields[f]) for f in (1, 2) if len(seg.fields) > f and seg.fields[f])
        start = 3
    for f in range(start, len(seg.fields)):
        raw = seg.fields[f]
        if not raw or raw == NULL:
            continue
        for rep in raw.split(d.repetition):
            for c, comp in enumerate(rep.split(d.component), 1):
                if d.subcomponent and d.subcomponent in comp:
                    for s, sub in enumerate(comp.split(d.subcomponent), 1):
                        yield from _leaf(f"{sid}-{f}.{c}.{s}", sub, d)
                else:
                    yield from _leaf(f"{sid}-{f}.{c}", comp, d)


def _leaf(path: str, raw: str, d: Delimiters) -> Iterator[tuple[str, str]]:
    if raw and raw != NULL:
        value = unescape(raw, d) if d.escape and d.escape in raw else raw
        if value.strip():
            yield path, value
