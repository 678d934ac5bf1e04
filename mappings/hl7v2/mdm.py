"""MDM (v2.3-v2.8) T02/T04/T06/T08/T10 (with content) and T11 (cancel) -> one Document (+ Person).

* Key: ``hl7v2|<sending facility>|document|<TXA-12>`` (unique document number, ``id@namespace``);
  missing -> ValidationError ``HL7_NO_DOCUMENT_NUMBER``. An addendum (T06) or a replacement (T10)
  has its own TXA-12 and names its parent in TXA-13 (``parent_ref``).
* doc_type TXA-2 (HL7 table 0270 unless a coding system is given), title TXA-25 else the type's
  text, author TXA-9 (originator) else TXA-5, text = the TX/FT/ST/CE OBX values in order joined by
  line breaks (``text/plain``), the distinct OBX-3 codes of those lines as ``topic_codes``. An ED OBX
  with Base64/Hex data is decoded once: its bytes go to the
  result's attachments, an :class:`~engine.model.AttachmentRef` (type, size, sha256, description OBX-3.2
  else the NTE after it) to ``attachments``; an RP OBX, or ED data in another encoding, is named by its
  MIME type (size 0, flag ``ATTACHMENT_NOT_INLINED``); data that does not decode is flagged
  ``ATTACHMENT_DECODE_FAILED``.
* Person: the PID's demographics (see :mod:`mappings.hl7v2.pid`, with telecom, language and marital
  status), keyed as ADT keys it.
* Status: T11 -> cancelled; TXA-19 CA/OB -> cancelled; TXA-17 AU/LA -> final, DI/DO/IP/IN/PA ->
  preliminary.
* Event time: EVN-2, else EVN-6, else MSH-7.
* T01/T03/T05/T07/T09 are notifications without content: nothing is written (warning
  ``HL7_NOTIFICATION_ONLY``), so a notification never overwrites a document's text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import ValidationError
from engine.model import Attachment, AttachmentRef, Coding, Document, MappingResult, Person, RecordStatus
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


@dataclass
class _Content:
    """The text and the attachments of a document's OBX segments."""

    text: str | None = None
    refs: list[AttachmentRef] = field(default_factory=list)
    data: list[Attachment] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    #: the distinct OBX-3 codes of the text lines (the document's sections)
    sections: list[Coding] = field(default_factory=list)


def _description(obx: Segment, after: Segment | None) -> str | None:
    """OBX-3 text, else the comment (NTE-3) right after the OBX."""
    if obx.get(3, 2):
        return obx.get(3, 2)
    return (after.text(3) or None) if after is not None and after.id == "NTE" else None


def _content(src: Source) -> _Content:
    out = _Content()
    lines: list[str] = []
    segs = src.msg.segments
    for i, obx in enumerate(segs):
        if obx.id != "OBX":
            continue
        vtype = obx.get(2).upper()
        if vtype in ("ED", "RP"):
            value = values.obx_value(obx, vtype)
            out.flags += value.get("flags", ())
            att: Attachment | None = value.get("attachment")
            desc = _description(obx, segs[i + 1] if i + 1 < len(segs) else None)
            if att is not None:
                out.data.append(att)
                out.refs.append(att.ref(description=desc))
            else:
                code = value.get("value_code")
                mime = code.code if code is not None else "application/octet-stream"
                if vtype == "RP":
                    out.flags.append("ATTACHMENT_NOT_INLINED")
                out.refs.append(AttachmentRef.named(mime, description=desc))
        elif vtype in _TEXT_TYPES or not vtype:
            lines.extend(obx.text(5, r) for r in range(len(obx.reps(5))))
            section = tables.coded_field(obx, 3).code if obx.raw(3) else None
            if section is not None and section not in out.sections:
                out.sections.append(section)
    out.text = "\n".join(lines) if lines else None
    return out


def _ei(seg: Segment, f: int) -> str:
    ident, ns = seg.get(f), seg.get(f, 2)
    return f"{ident}@{ns}" if ident and ns else ident


def document(txa: Segment, src: Source, subject: object) -> tuple[Document, list[Attachment]]:
    number = _ei(txa, 12)
    if not number:
        raise ValidationError("TXA-12 unique document number missing", code="HL7_NO_DOCUMENT_NUMBER")
    doc_type = tables.coding(txa.get(2), txa.get(2, 2), txa.get(2, 3) or "HL70270") or Coding(code="UNKNOWN")
    content = _content(src)
    text = content.text
    status = RecordStatus.CANCELLED if src.event == "T11" else tables.document_status(txa.get(17), txa.get(19))
    flags = (*src.flags, *dict.fromkeys(content.flags))
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
        attachments=tuple(content.refs),
        topic_codes=tuple(content.sections) or None,
    ), content.data


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
    doc, data = document(txa, src, pat.subject)
    pid = src.require("PID")
    person: tuple[Person, ...] = ()
    if pidmod.has_demographics(pid):
        extra = pidmod.contact_details(pid)
        one = pidmod.person(pid, pat, src)
        person = (one.model_copy(update=extra) if extra else one,)
    return MappingResult(
        records=(*person, doc),
        attachments=tuple(dict.fromkeys(data)),
        links=pat.links,
        warnings=tuple(warnings),
        message_type=f"MDM^{src.event}",
        source_message_id=src.control_id,
    )
