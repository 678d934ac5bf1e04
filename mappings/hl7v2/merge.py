"""ADT identity events (v2.3-v2.8) -> IdentityLinks (+ a Person version when the PID has demographics).

* Merge: A18, A30, A34, A36, A39, A40. Each PID/MRG pair links the surviving patient's best
  identifier (PID-3/2/4) to every prior identifier in MRG-1 (prior patient identifier list), MRG-2
  (prior alternate id) and MRG-4 (prior patient id) with reason ``merge``.
* Identifier change: A46, A47 -> reason ``replaces`` (MRG-1 is the identifier being replaced).
* Link: A24 -> the best identifiers of the first and second PID, reason ``link``. (A37 unlink is not
  mapped: an identity graph only grows, so it is rejected as unsupported.)

Identifiers inside one PID are also linked (``same-message``). Missing MRG -> ParseError
``HL7_NO_MRG``; A24 with one PID -> ``HL7_NO_PID``.
"""

from __future__ import annotations

from typing import Any

from engine.errors import ParseError
from engine.model import IdentityLink, MappingResult
from mappings.hl7v2 import pid as pidmod
from mappings.hl7v2.common import Source
from mappings.hl7v2.message import Segment

MERGE_EVENTS = frozenset({"A18", "A30", "A34", "A36", "A39", "A40"})
REPLACE_EVENTS = frozenset({"A46", "A47"})
LINK_EVENTS = frozenset({"A24"})
EVENTS = MERGE_EVENTS | REPLACE_EVENTS | LINK_EVENTS


def _pairs(src: Source) -> list[tuple[Segment, Segment]]:
    """(PID, MRG) pairs in message order (each MRG belongs to the PID before it)."""
    pairs: list[tuple[Segment, Segment]] = []
    current: Segment | None = None
    for seg in src.msg.segments:
        if seg.id == "PID":
            current = seg
        elif seg.id == "MRG" and current is not None:
            pairs.append((current, seg))
    if not pairs:
        raise ParseError("PID/MRG pair missing", code="HL7_NO_MRG" if src.msg.segment("PID") else "HL7_NO_PID")
    return pairs


def _merge(src: Source, reason: str) -> tuple[list[Any], list[IdentityLink], list[str]]:
    records: list[Any] = []
    links: list[IdentityLink] = []
    warnings: list[str] = []
    for pid, mrg in _pairs(src):
        pat = pidmod.patient(pid, src)
        prior = pidmod.identifiers(mrg, (1, 2, 4), src.facility)
        links.extend(pat.links)
        links.extend(IdentityLink(a=pat.subject, b=p, reason=reason) for p in prior if p != pat.subject)
        if not prior:
            warnings.append("HL7_MRG_NO_PRIOR_ID")
        if any("INVALID_NUMBER" in p.flags for p in prior):
            warnings.append("HL7_INVALID_NATIONAL_ID")
        warnings.extend(pat.warnings)
        if pidmod.has_demographics(pid):
            records.append(pidmod.person(pid, pat, src))
    return records, links, warnings


def _link(src: Source) -> tuple[list[Any], list[IdentityLink], list[str]]:
    pids = src.msg.all("PID")
    if len(pids) < 2:
        raise ParseError("A24 needs two PID segments", code="HL7_NO_PID")
    a, b = pidmod.patient(pids[0], src), pidmod.patient(pids[1], src)
    links = [*a.links, *b.links]
    if a.subject != b.subject:
        links.append(IdentityLink(a=a.subject, b=b.subject, reason="link"))
    records = [pidmod.person(p, pt, src) for p, pt in ((pids[0], a), (pids[1], b)) if pidmod.has_demographics(p)]
    return records, links, [*a.warnings, *b.warnings]


def map_merge(src: Source) -> MappingResult:
    """IdentityLinks (+ Person versions) for a merge, identifier change or link event."""
    if src.event in LINK_EVENTS:
        records, links, warnings = _link(src)
    else:
        records, links, warnings = _merge(src, "replaces" if src.event in REPLACE_EVENTS else "merge")
    return MappingResult(
        records=tuple(records),
        links=tuple(dict.fromkeys(links)),
        warnings=tuple(dict.fromkeys(warnings)),
        message_type=f"ADT^{src.event}",
        source_message_id=src.control_id,
    )
