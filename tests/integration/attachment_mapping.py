"""A mapping for attachment tests: ``ATT|<patient>|<variant>|<size>`` becomes a document and a result that
refer to one attachment of ``size`` bytes (default 4096), made from the patient number and the size alone
(so two messages with the same numbers carry the same bytes).

Variants: ``shared`` (both records refer to the one attachment), ``two`` (the document has a second
attachment of its own), ``badhash`` (the attachment's sha256 is not its bytes'), ``badsize`` (a reference
with the wrong size), ``missing`` (a reference without bytes), ``orphan`` (bytes no record refers to),
``naive`` (as ``shared``, plus a record the store cannot write: a naive event time, built without
validation).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from engine.model import Attachment, Coding, Document, MapContext, MappingResult, Observation
from tests.helpers import fnr_id

NAME = "tests.integration.attachment_mapping:map_message"
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def pdf_bytes(n: int, size: int = 4096) -> bytes:
    """``size`` bytes starting like a PDF, a pure function of ``n`` and ``size``."""
    seed = hashlib.sha256(f"{n}:{size}".encode()).digest()
    body = (seed * (size // len(seed) + 1))[: max(size - 9, 0)]
    return (b"%PDF-1.4\n" + body)[:size]


def message(n: int, variant: str = "shared", size: int = 4096) -> bytes:
    return f"ATT|{n}|{variant}|{size}".encode()


def map_message(raw: bytes, ctx: MapContext) -> MappingResult:
    _, n_text, variant, size_text = raw.decode().split("|")
    n, size = int(n_text), int(size_text)
    subject = fnr_id(n)
    prov = ctx.provenance(f"att-{n}-{variant}")
    att = Attachment.of(pdf_bytes(n, size), "application/pdf")
    carried = [att]
    doc_refs = [att.ref("Svarrapport", "report.pdf")]
    if variant == "two":
        second = Attachment.of(pdf_bytes(n + 100_000, 1000), "image/tiff")
        carried.append(second)
        doc_refs.append(second.ref("Scan"))
    elif variant == "badhash":
        carried = [Attachment(content_type="application/pdf", data=att.data, sha256="0" * 64)]
        doc_refs = [carried[0].ref("Svarrapport")]
    elif variant == "badsize":
        doc_refs = [att.ref("Svarrapport").model_copy(update={"size": size + 1})]
    elif variant == "missing":
        carried = []
    elif variant == "orphan":
        carried.append(Attachment.of(b"%PDF-1.4 nobody's", "application/pdf"))
    doc = Document(
        key=f"att|{n}|doc",
        subject=subject,
        event_time=T0,
        provenance=prov,
        doc_type=Coding(code="lab-report"),
        title="Svarrapport",
        attachments=tuple(doc_refs),
    )
    obs = Observation(
        key=f"att|{n}|obs",
        subject=subject,
        event_time=T0,
        provenance=prov,
        code=Coding(code="PDF"),
        value_type="ED",
        value_attachment=att.ref("Svarrapport"),
    )
    records: list[object] = [doc, obs]
    if variant == "naive":
        records.append(
            Observation.model_construct(
                key=f"att|{n}|naive",
                subject=subject,
                event_time=datetime(2026, 1, 1),
                provenance=prov,
                code=Coding(code="X"),
                kind="observation",
                flags=(),
            )
        )
    return MappingResult(records=tuple(records), attachments=tuple(carried), source_message_id=f"att-{n}")
