"""MDM (v2.3-v2.8) T02/T04/T06/T08/T10 (with content) and T11 (cancel) -> one Document.

* Key: ``hl7v2|<sending facility>|document|<TXA-12>`` (unique document number, ``id@namespace``);
  missing -> ValidationError ``HL7_NO_DOCUMENT_NUMBER``. An addendum (T06) or a replacement (T10)
  has its own TXA-12 and names its parent in TXA-13 (``parent_ref``).
* doc_type TXA-2 (HL7 table 0270 unless a coding system is given), title TXA-25 else the type's
  text, author TXA-9 (originator) else TXA-5, text = the TX/FT/ST/CE OBX values in order joined by
  line breaks (``text/plain``); ED/RP OBX are not inlined, their MIME types go to ``attachments``.
* Status: T11 -> cancelled; TXA-19 CA/OB -> cancelled; TXA-17 AU/LA -> final, DI/DO/IP/IN/PA ->
  preliminary.
* Event time: EVN-2, else EVN-6, else MSH-7.
* T01/T03/T05/T07/T09 are notifications without content: nothing is written (warning
  ``HL7_NOTIFICATION_ONLY``), so a notification never overwrites a document's text.
"""

from __future__ import annotations

from engine.errors import ValidationError
from engine.model import AttachmentRef, Coding, Document, MappingResult, RecordStatus
from mappings.hl7v2 import pid as pidmod
from mappings.hl7v2 import tables, values
from mappings.hl7v2.common import Source
from mappings.hl7v2.message import Segment

CONTENT_EVENTS = frozenset({"T02", "T04", "T06", "T08", "T10", "T11"})
NOTIFICATION_EVENTS = frozenset({"T01", "T03", "T05", "T07", "T09"})
EVENTS = CONTENT_EVENTS | NOTIFICATION_EVENTS
_TEXT_TYPES = frozenset({"TX", "FT", "ST", "CE", "CWE", "NM", "SN"})


def _person_name(seg: Segment, f: int) -> str | None:
    name = " ".join(x for x in (seg.get(f, 3), seg.get(f, 2, 1)) if x)
    return name or seg.get(f) or None


def _content(src: Source) -> tuple[str | None, tuple[AttachmentRef, ...]]:
    lines: list[str] = []
    attachments: list[AttachmentRef] = []
    for obx in src.msg.all("OBX"):
        vtype = obx.get(2).upper()
        if vtype in ("ED", "RP"):
            code = values.obx_value(obx, vtype).get("value_code")
            attachments.append(AttachmentRef.named(code.code if code is not None else "application/octet-stream"))
        elif vtype in _TEXT_TYPES or not vtype:
            lines.extend(obx.text(5, r) for r in range(len(obx.reps(5))))
    return ("\n".join(lines) if lines else None), tuple(attachments)


def _ei(seg: Segment, f: int) -> str:
    ident, ns = seg.get(f), seg.get(f, 2)
    return f"{ident}@{ns}" if ident and ns else ident


def document(txa: Segment, src: Source, subject: object) -> Document:
    number = _ei(txa, 12)
    if not number:
        raise ValidationError("TXA-12 unique document number missing", code="HL7_NO_DOCUMENT_NUMBER")
    doc_type = tables.coding(txa.get(2), txa.get(2, 2), txa.get(2, 3) or "HL70270") or Coding(code="UNKNOWN")
    text, attachments = _content(src)
    status = RecordStatus.CANCELLED if src.event == "T11" else tables.document_status(txa.get(17), txa.get(19))
    flags = (*src.flags, *(("ATTACHMENT_NOT_INLINED",) if attachments else ()))
    return Document(
        key=src.key("document", number),
        subject=subject,
        event_time=src.event_time,
        status=status,
        provenance=src.prov,
        flags=flags,
        doc_type=doc_type,
        title=txa.get(25) or doc_type.display,
        text=text,
        mime_type="text/plain" if text else None,
        author=_person_name(txa, 9) or _person_name(txa, 5),
        parent_ref=_ei(txa, 13) or None,
        attachments=attachments,
    )


def map_mdm(src: Source) -> MappingResult:
    """One Document (or nothing, for a notification) for an MDM message."""
    txa = src.require("TXA")
    pat = pidmod.patient(src.require("PID"), src)
    warnings = list(pat.warnings)
    if src.event in NOTIFICATION_EVENTS:
        return MappingResult(
            links=pat.links,
            warnings=(*warnings, "HL7_NOTIFICATION_ONLY"),
            message_type=f"MDM^{src.event}",
            source_message_id=src.control_id,
        )
    doc = document(txa, src, pat.subject)
    return MappingResult(
        records=(doc,),
        links=pat.links,
        warnings=tuple(warnings),
        message_type=f"MDM^{src.event}",
        source_message_id=src.control_id,
    )
