"""Requisitions and specimens of KITH v1.x lab messages, shared by Svarrapport and Rekvisisjon.

* ``ServReq`` -> :class:`Requisition`: ``Id`` (placer id), ``IdByServProvider`` (filler id), the requested
  ``Investigation/Id`` codes (Rekvisisjon), ``RequestedPrioReport`` (priority: the source code kept in
  ``priority_code``, mapped to FHIR request-priority by :data:`PRIORITIES`), ``IssueDate`` (requested time,
  a date alone as ``requested_date``), ``ReasonAsText`` sections and their ``TextCode`` plus
  ``Diagnosis/Concept`` (reason, reason codes), ``ReqComment`` and ``Comment`` (comments).
* ``AnalysedSubject`` -> :class:`Specimen`: ``IdByServProvider`` / ``IdByServProv`` (sample id, else
  ``IdByRequester``), ``TypeCoded`` (else ``Type`` as text), ``CollectedSample/CollectedDate`` (a date alone as
  ``collected_date``), the requisition's ``ReceiptDate`` (received), ``AnatomicalOrigin`` / ``SampleSite``
  (body site), ``Comment``, ``CollectedSample/CollectorComment`` and ``SampleHandling`` (comments).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from engine.model import Coding, Identifier, Party, Provenance, RecordStatus, Requisition, Specimen
from mappings.kith import common as c
from mappings.kith.node import Node
from mappings.kith.xml import first_child

#: ``RequestedPrioReport/@V`` -> FHIR request-priority (senders' codes; others keep only ``priority_code``)
PRIORITIES = {
    "N": "routine",
    "NORMAL": "routine",
    "R": "routine",
    "H": "urgent",
    "HAST": "urgent",
    "U": "urgent",
    "OHJELP": "urgent",
    "ØH": "urgent",
    "OH": "urgent",
    "STAT": "stat",
}


def requisition(
    req: Node,
    *,
    key: str,
    subject: Identifier,
    time: datetime,
    prov: Provenance,
    status: RecordStatus,
    parties: tuple[Party, ...] | None,
    codes: tuple[Coding, ...] | None = None,
) -> Requisition:
    """The :class:`Requisition` of one ``ServReq``."""
    get = req.index().get
    prio = get("RequestedPrioReport")
    prio_code = None if prio is None else c.coding_of(prio)
    requested_at, requested_date = c.time_or_date(c.el_attr(get("IssueDate")))
    reasons = req.all("ReasonAsText")
    reason_codes: list[Coding] = []
    sections: list[tuple[str | None, str | None]] = []
    for el in reasons:
        reason = Node(el)
        sections.append((c.attr(reason, "Heading", "DN"), c.element_text(reason.find("TextResultValue"))))
        reason_codes += [x for x in (c.coding_of(n) for n in reason.all("TextCode")) if x is not None]
    if "Diagnosis" in req.index():
        reason_codes += [x for x in (c.coding(n) for n in req.findall("Diagnosis/Concept")) if x is not None]
    comments = [c.el_text(get("ReqComment")), *(_comment(Node(n)) for n in req.all("Comment"))]
    return Requisition(
        key=key,
        subject=subject,
        event_time=time,
        status=status,
        provenance=prov,
        parties=parties or None,
        comments=_present(comments),
        placer_id=c.el_text(get("Id")),
        filler_id=c.el_text(get("IdByServProvider")),
        codes=codes or None,
        priority=PRIORITIES.get(prio_code.code.upper()) if prio_code else None,
        priority_code=prio_code,
        requested_at=requested_at,
        requested_date=requested_date,
        reason=c.sections(sections),
        reason_codes=tuple(reason_codes) or None,
    )


def _comment(node: Node) -> str | None:
    """A ``Comment`` with ``Heading`` + ``TextResultValue`` (+ ``TextCode``), or plain text."""
    body = c.element_text(node.find("TextResultValue")) or c.attr(node, "TextCode", "DN") or node.text
    heading = c.attr(node, "Heading", "DN")
    return f"{heading}: {body}" if heading and body else body


def _present(items: Iterable[str | None]) -> tuple[str, ...] | None:
    found = tuple(x for x in items if x)
    return found or None


def sample_id(subj: Node, index: int) -> str:
    """The lab's sample id of an ``AnalysedSubject`` (``#<n>`` by position when it has none)."""
    get = subj.index().get
    for name in ("IdByServProvider", "IdByServProv", "IdByRequester"):
        found = c.el_text(get(name))
        if found:
            return found
    return f"#{index}"


def specimen_type(subj: Node) -> Coding | None:
    """``TypeCoded``, else ``Type`` as an uncoded text."""
    get = subj.index().get
    coded = get("TypeCoded")
    found = None if coded is None else c.coding_of(coded)
    if found is None:
        text = c.el_text(get("Type"))
        found = None if text is None else c.uncoded_text(text)
    return found


def specimen(
    subj: Node,
    sample: str,
    *,
    key: str,
    subject: Identifier,
    time: datetime,
    prov: Provenance,
    status: RecordStatus,
    received_at: datetime | None = None,
) -> Specimen:
    """The :class:`Specimen` of one ``AnalysedSubject`` whose sample id is ``sample``."""
    get = subj.index().get
    collected = get("CollectedSample")
    collected_at, collected_date = c.time_or_date(
        None if collected is None else c.el_attr(first_child(collected, "CollectedDate"))
    )
    site = get("SampleSite")
    comments = [
        c.el_text(get("Comment")),
        None if collected is None else c.el_text(first_child(collected, "CollectorComment")),
        *(c.el_text(n) for n in subj.all("SampleHandling")),
    ]
    return Specimen(
        key=key,
        subject=subject,
        event_time=time,
        status=status,
        provenance=prov,
        comments=_present(comments),
        sample_id=sample,
        specimen_type=specimen_type(subj),
        collected_at=collected_at,
        collected_date=collected_date,
        received_at=received_at,
        body_site=None if site is None else c.coding_of(site),
        body_site_text=c.el_text(get("AnatomicalOrigin")) or c.el_text(site),
    )
