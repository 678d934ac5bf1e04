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
    prio = req.first("RequestedPrioReport")
    prio_code = None if prio is None else c.coding_of(prio)
    requested_at, requested_date = c.time_or_date(c.attr(req, "IssueDate"))
    reasons = c.findall(req, "ReasonAsText")
    reason_codes = [x for x in (c.coding(n) for r in reasons for n in r.findall("TextCode")) if x is not None]
    reason_codes += [x for x in (c.coding(n) for n in c.findall(req, "Diagnosis/Concept")) if x is not None]
    comments = [c.text(req, "ReqComment"), *(_comment(n) for n in c.findall(req, "Comment"))]
    return Requisition(
        key=key,
        subject=subject,
        event_time=time,
        status=status,
        provenance=prov,
        parties=parties or None,
        comments=_present(comments),
        placer_id=c.text(req, "Id"),
        filler_id=c.text(req, "IdByServProvider"),
        codes=codes or None,
        priority=PRIORITIES.get(prio_code.code.upper()) if prio_code else None,
        priority_code=prio_code,
        requested_at=requested_at,
        requested_date=requested_date,
        reason=c.sections([(c.attr(r, "Heading", "DN"), c.element_text(r.find("TextResultValue"))) for r in reasons]),
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
    return (
        c.text(subj, "IdByServProvider") or c.text(subj, "IdByServProv") or c.text(subj, "IdByRequester") or f"#{index}"
    )


def specimen_type(subj: Node) -> Coding | None:
    """``TypeCoded``, else ``Type`` as an uncoded text."""
    found = c.coding(subj.find("TypeCoded"))
    if found is None:
        text = c.text(subj, "Type")
        found = None if text is None else Coding(code=c.UNSPECIFIED, display=text)
    return found


def specimen(
    subj: Node,
    index: int,
    *,
    key: str,
    subject: Identifier,
    time: datetime,
    prov: Provenance,
    status: RecordStatus,
    received_at: datetime | None = None,
) -> Specimen:
    """The :class:`Specimen` of one ``AnalysedSubject``."""
    collected_at, collected_date = c.time_or_date(c.attr(subj, "CollectedSample/CollectedDate"))
    site = c.find(subj, "SampleSite")
    comments = [
        c.text(subj, "Comment"),
        c.text(subj, "CollectedSample/CollectorComment"),
        *(c.element_text(n) for n in c.findall(subj, "SampleHandling")),
    ]
    return Specimen(
        key=key,
        subject=subject,
        event_time=time,
        status=status,
        provenance=prov,
        comments=_present(comments),
        sample_id=sample_id(subj, index),
        specimen_type=specimen_type(subj),
        collected_at=collected_at,
        collected_date=collected_date,
        received_at=received_at,
        body_site=c.coding(site),
        body_site_text=c.text(subj, "AnatomicalOrigin") or (site.text if site is not None else None),
    )
