"""One ORU order group (ORC/OBR and its SPM) -> Report, Requisition and Specimen records.

* Report (per OBR), key ``hl7v2|<facility>|report|<filler>``: code OBR-4 (alternates, original text),
  status OBR-25 (:func:`mappings.hl7v2.status.report_status`), issued OBR-22, effective OBR-7 else
  OBR-8, category OBR-24 (table 0074), report_id the filler order, result_keys its Observations,
  comments the NTE after the OBR; parties: sender MSH-4, requester OBR-16 / ORC-12 / ORC-21,
  responsible OBR-32.
* Requisition (per OBR or ORC), key ``hl7v2|<facility>|requisition|<filler>``: placer ORC-2 else OBR-2,
  filler ORC-3 else OBR-3, codes OBR-4, priority OBR-5, else TQ1-9, else ORC-7.6 / OBR-27.6 (table 0027
  -> FHIR, the code in ``priority_code``), requested_at OBR-6 else ORC-9, reason OBR-31 (codes, texts);
  cancelled when ORC-1 is CA/OC/CR, ORC-5 CA/DC or OBR-25 X. Parties: requester OBR-16 / ORC-12 / ORC-21.
* Specimen per SPM, key ``hl7v2|<facility>|specimen|<SPM-2 filler id, else placer id>`` (without an id:
  the filler order and SPM-1): type SPM-4, body site SPM-8, collected SPM-17, received SPM-18. Without
  SPM, OBR-15 (type 15.1, body site 15.4), OBR-7 (collected) and OBR-14 (received) make one specimen keyed
  by the filler order when OBR-14 or OBR-15.4 is given (the type alone is each result's ``specimen``, the
  collection time the report's ``effective_time``: no record repeats them).

Event time of all three: OBR-22, else MSH-7, else the effective time, else receipt (as the results').
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from engine.model import Coding, Identifier, Party, RecordStatus, Report, Requisition, Specimen
from mappings.hl7v2 import parties, status, tables
from mappings.hl7v2.common import Source
from mappings.hl7v2.message import Segment
from mappings.hl7v2.timeutil import first_time, time_or_date

_PRIORITY_SYSTEM = "HL70027"
_CANCEL_CONTROL = frozenset({"CA", "OC", "CR"})
_CANCEL_ORDER_STATUS = frozenset({"CA", "DC"})


def ei(seg: Segment | None, f: int) -> str:
    """An EI field as ``id@namespace`` (``id`` alone without a namespace)."""
    if seg is None or not seg.raw(f):
        return ""
    cs = seg.comps(f)
    ident, ns = cs[0], cs[1] if len(cs) > 1 else ""
    return f"{ident}@{ns}" if ident and ns else ident


@dataclass
class OrderFacts:
    """What the records of one order group share (computed once per group)."""

    subject: Identifier
    event_time: datetime
    flags: tuple[str, ...]
    report_key: str | None
    requisition_key: str | None
    specimen_keys: tuple[str, ...]
    requesters: list[Party]
    sender: list[Party]
    placer_id: str  # ORC-2, else OBR-2
    filler_id: str  # ORC-3, else OBR-3
    report_id: str  # OBR-3, else ORC-3
    obr25: str  # OBR-25 as written
    obr7: str  # OBR-7 as written
    obr22: datetime | None  # OBR-22
    #: report_key / requisition_key / specimen_key for each result of the group (the ones it has)
    result_links: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        links = (
            ("report_key", self.report_key),
            ("requisition_key", self.requisition_key),
            ("specimen_key", self.specimen_keys[0] if self.specimen_keys else None),
        )
        self.result_links = {k: v for k, v in links if v is not None}


def requesters(obr: Segment | None, orc: Segment | None, facility: str) -> list[Party]:
    """OBR-16 and ORC-12 ordering providers, ORC-21 ordering facility (role requester)."""
    if orc is None:
        return parties.of(obr, 16, "xcn", "requester", facility)
    return [
        *parties.of(obr, 16, "xcn", "requester", facility),
        *parties.of(orc, 12, "xcn", "requester", facility),
        *parties.of(orc, 21, "xon", "requester", facility),
    ]


def _codes(obr: Segment | None) -> tables.Coded:
    return tables.coded_field(obr, 4) if obr is not None else _NO_CODE


_NO_CODE = tables.Coded(None, None, None)


def _base(facts: OrderFacts, src: Source, key: str) -> dict[str, Any]:
    return {"key": key, "subject": facts.subject, "event_time": facts.event_time, "provenance": src.prov}


def report(
    obr: Segment, orc: Segment | None, facts: OrderFacts, result_keys: list[str], notes: list[str], src: Source
) -> Report:
    """The Report an OBR states (see the module docstring)."""
    coded = _codes(obr)
    state, flags = status.report_status(facts.obr25)
    eff, eff_date = time_or_date(facts.obr7 or obr.get(8))
    found = [*facts.sender, *facts.requesters, *parties.of(obr, 32, "cnn", "responsible", src.facility)]
    return Report.model_validate(
        {
            **_base(facts, src, facts.report_key or src.key("report", src.control_id)),
            "status": state,
            "flags": (*facts.flags, *flags),
            "parties": parties.unique(found),
            "comments": tuple(notes) or None,
            "code": coded.code,
            "alt_codes": coded.alt,
            "code_text": coded.text,
            "category": tables.diagnostic_section(obr.get(24)) if obr.raw(24) else None,
            "report_id": facts.report_id or None,
            "issued": facts.obr22,
            "effective_time": eff,
            "effective_date": eff_date,
            "result_keys": tuple(result_keys) or None,
            "requisition_key": facts.requisition_key,
            "specimen_keys": facts.specimen_keys or None,
        }
    )


def _priority(obr: Segment | None, orc: Segment | None, tq1: Segment | None) -> str:
    for seg, f, c in ((obr, 5, 1), (tq1, 9, 1), (orc, 7, 6), (obr, 27, 6)):
        if seg is not None and seg.raw(f):
            code = seg.get(f, c)
            if code:
                return code
    return ""


def _reason(obr: Segment | None) -> tuple[str | None, tuple[Coding, ...] | None]:
    if obr is None or not obr.raw(31):
        return None, None
    found = [tables.coded(r, obr.d) for r in obr.reps(31)]
    codes = tuple(c.code for c in found if c.code is not None and c.code.code)
    texts = [t for c in found if (t := c.text or (c.code.display if c.code else None))]
    return "; ".join(texts) or None, codes or None


def _requisition_status(orc: Segment | None, obr25: str) -> RecordStatus:
    if orc is not None and (orc.get(1).upper() in _CANCEL_CONTROL or orc.get(5).upper() in _CANCEL_ORDER_STATUS):
        return RecordStatus.CANCELLED
    return RecordStatus.CANCELLED if obr25.strip().upper() == "X" else RecordStatus.FINAL


def requisition(
    obr: Segment | None, orc: Segment | None, tq1: Segment | None, facts: OrderFacts, src: Source
) -> Requisition:
    """The Requisition an ORC/OBR states (see the module docstring)."""
    coded = _codes(obr)
    prio = _priority(obr, orc, tq1)
    requested = first_time(obr.get(6) if obr is not None and obr.raw(6) else "") or (
        first_time(orc.get(9)) if orc is not None and orc.raw(9) else None
    )
    reason, reason_codes = _reason(obr)
    codes = (coded.code, *(coded.alt or ())) if coded.code is not None else None
    return Requisition.model_validate(
        {
            **_base(facts, src, facts.requisition_key or src.key("requisition", src.control_id)),
            "status": _requisition_status(orc, facts.obr25),
            "flags": facts.flags,
            "parties": parties.unique(facts.requesters),
            "placer_id": facts.placer_id or None,
            "filler_id": facts.filler_id or None,
            "codes": codes,
            "code_text": coded.text,
            "priority": tables.priority(prio),
            "priority_code": tables.coding(prio, "", _PRIORITY_SYSTEM) if prio else None,
            "requested_at": requested,
            "reason": reason,
            "reason_codes": reason_codes,
        }
    )


def _spm_id(spm: Segment) -> str:
    """SPM-2: the filler's specimen id (EIP component 2), else the placer's (component 1)."""
    return spm.get(2, 2) or spm.get(2, 1)


def specimen_key(spm: Segment, filler: str, n: int, src: Source) -> str:
    sample = _spm_id(spm)
    return src.key("specimen", sample) if sample else src.key("specimen", filler, spm.get(1) or str(n))


def _when(value: str) -> tuple[datetime | None, date | None]:
    return time_or_date(value) if value else (None, None)


def spm_specimen(spm: Segment, key: str, facts: OrderFacts, src: Source) -> Specimen:
    """A Specimen from one SPM segment."""
    collected, collected_date = _when(spm.get(17))
    site = tables.coded_field(spm, 8)
    return Specimen.model_validate(
        {
            **_base(facts, src, key),
            "flags": facts.flags,
            "sample_id": _spm_id(spm) or None,
            "specimen_type": tables.coded_field(spm, 4).code,
            "collected_at": collected,
            "collected_date": collected_date,
            "received_at": first_time(spm.get(18)),
            "body_site": site.code,
            "body_site_text": site.text,
        }
    )


def has_obr_specimen(obr: Segment | None) -> bool:
    """True when the OBR says more about its specimen than the results and the report already hold: a
    received time (OBR-14) or a body site (OBR-15.4). The type alone (OBR-15.1) is each result's
    ``specimen`` and the collection time (OBR-7) the report's ``effective_time``."""
    if obr is None:
        return False
    if obr.raw(14):
        return True
    sps = obr.comps(15) if obr.raw(15) else []
    return len(sps) > 3 and bool(sps[3])


def obr_specimen(obr: Segment, key: str, type_: Coding | None, facts: OrderFacts, src: Source) -> Specimen:
    """A Specimen from OBR-15 (type ``type_``, body site 15.4), OBR-7 and OBR-14 (no SPM in the group)."""
    collected, collected_date = _when(obr.get(7))
    site = tables.coding(obr.get(15, 4, 1), obr.get(15, 4, 2), obr.get(15, 4, 3)) if obr.raw(15) else None
    return Specimen.model_validate(
        {
            **_base(facts, src, key),
            "flags": facts.flags,
            "specimen_type": type_,
            "collected_at": collected,
            "collected_date": collected_date,
            "received_at": first_time(obr.get(14)),
            "body_site": site,
        }
    )
