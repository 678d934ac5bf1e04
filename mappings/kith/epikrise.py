"""Epikrise 1.1 / 1.2 (``.../epikrise/2006-09-23`` and ``/2012-02-15``, root ``Message``): discharge summaries.

``Message/ServRprt`` with the hospital as ``ServProvider/HCP/Inst`` (the sender, ``HER:<id>``):

* Document: key ``kith:epikrise:<sender>:<ServProvId>``; doc type EPIKRISE (8279); title ``MsgDescr``
  ("Sykehusepikrise"); text = the narrative ``Event/Comment`` sections (``Heading`` 8311: AI, FO, HJ, VU, OP,
  SY, IP; XHTML -> text) and the free-text ``InfItem`` observations (CAVE, FUNN, ANAM); author
  ``RelServProvider`` or the hospital. Status from ``ServType`` (N/M/C) and ``Status`` (F/P).
* Encounter ``<document key>:stay``: ``Event/ReportedEvent/{StartDateTime, EndDateTime}``, ``Service/AdmCat``
  (1 Heldøgnsopphold -> inpatient), ``AdmOutcome`` as discharge disposition, the hospital as facility.
* Condition per coded ``InfItem`` (``Type`` 8233 ``H`` main, ``B`` secondary; ICD-10 7110 / ICPC-2 7170, codes
  without dot), key ``<document key>:dx:<code>``; an ICD-10 star code (``Modifier``) is kept in the text.
* Medication per ``InfItem/Medication``: ATC ``DrugId`` without spaces (``C03C A01`` -> ``C03CA01``), name
  ``DN``, dosage ``UnitDose`` + ``DosageText``, status ``Status/@DN``; key ``<document key>:med:<ATC>``.

* Parties (:mod:`mappings.kith.hcp`, on every record): the hospital ``ServProvider`` as ``author``,
  ``RelServProvider`` as ``responsible`` (or its ``Relation``), ``Requester`` as ``requester``, ``CopyDest`` as
  ``copy``, ``Patient/PatRelHCP`` by ``Relation`` (``FLE`` gp, ``HHE`` requester), and the MsgHead's.
* Several ``CodedDescr`` of a diagnosis: the first is the code, the others ``alt_codes``; the ``InfItem``'s
  ``StartDateTime`` is the onset (``onset_date`` when a date alone), a drug's ``StartDateTime``/``EndDateTime``
  its start and end (``start_date``/``end_date``); a ``Concept``'s
  original text (``OT``) beside its display is kept in the text. A drug's ``Comment`` -> comments.
* The referral the stay answers (``ServReq``: type, date, id, diagnoses) and the approval date (``ApprDate``)
  are sections of the Document text.

A cancellation (ServType C) carries no Event: the Document and the Encounter keys are cancelled.
Event time: the latest of ``IssueDate`` and ``GenDate``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from engine.model import (
    Coding,
    Condition,
    Document,
    Encounter,
    MapContext,
    Medication,
    Party,
    Provenance,
    RecordStatus,
)
from mappings.kith import common as c
from mappings.kith import fk1
from mappings.kith import patient as pt
from mappings.kith.head import Head, inst_name, inst_scope, v1_parties
from mappings.kith.node import Node

_ROLE: dict[str, Literal["main", "secondary", "other"]] = {"H": "main", "B": "secondary"}
_ADM_CLASS = {"1": "inpatient"}
_TEXT_TYPES = frozenset({"CAVE", "FUNN", "ANAM", "MEDB", "ART"})


class _Ctx:
    """What every record of one epikrise shares."""

    def __init__(
        self,
        key: str,
        subj: pt.Subject,
        time: datetime,
        prov: Provenance,
        status: RecordStatus,
        parties: tuple[Party, ...] | None,
    ) -> None:
        self.key, self.subj, self.time, self.prov, self.status = key, subj, time, prov, status
        self.parties = parties

    def base(self, key: str) -> dict[str, object]:
        return {
            "key": key,
            "subject": self.subj.subject,
            "event_time": self.time,
            "provenance": self.prov,
            "status": self.status,
            "parties": self.parties,
        }


def map_payload(msg: Node, head: Head, ctx: MapContext) -> c.Part:
    part = c.Part()
    rep = c.find(msg, "ServRprt")
    if rep is None:
        part.warnings.append("KITH_PART_UNMAPPED:ServRprt")
        return part
    inst = c.find(rep, "ServProvider/HCP/Inst")
    scope = inst_scope(inst) or head.sender_scope or "unknown"
    subj = pt.resolve([head.patient, pt.from_message(c.find(rep, "Patient"), lab_scope=scope)], scope)
    msg_id = c.text(msg, "MsgId") or head.msg_id
    gen = c.parse_time(c.attr(msg, "GenDate")) or head.gen_time
    time = c.event_time(ctx, part.warnings, c.parse_time(c.attr(rep, "IssueDate")), gen, head.issue_time)
    doc_id = c.text(rep, "ServProvId") or msg_id or "unknown"
    status = c.status_from_servtype(c.attr(rep, "ServType"), c.attr(rep, "Status"))
    prov = ctx.provenance(source_message_id=head.msg_id or msg_id)
    x = _Ctx(
        f"kith:epikrise:{scope}:{doc_id}",
        subj,
        time,
        prov,
        status,
        fk1.merge(head.parties, v1_parties(rep, scope, _PARTIES)),
    )
    part.records.append(pt.person(subj, time, x.prov, parties=x.parties))
    part.links = pt.links(subj)
    part.records.append(_document(rep, msg, x, inst, head))
    part.attachments = head.attachment_data
    event = c.find(rep, "Event")
    if event is not None or status is RecordStatus.CANCELLED:
        part.records.append(_encounter(event, x, inst))
    part.records += _conditions(event, x) + _medications(event, x)
    return part


#: the v1.x wrappers that name parties on a discharge summary, and their roles
_PARTIES = (
    ("ServProvider", "author"),
    ("RelServProvider", "responsible"),
    ("Requester", "requester"),
    ("CopyDest", "copy"),
    ("Patient/PatRelHCP", "other"),
)


def _referral(rep: Node) -> str | None:
    """The referral the stay answers, as a line of text (type, date, id, diagnoses)."""
    req = c.find(rep, "ServReq")
    if req is None:
        return None
    dx = [
        f"{k.code} {k.display or ''}".strip() for k in map(c.coding_or_text, c.findall(req, "Diagnosis/Concept")) if k
    ]
    kind = c.text(req, "MsgDescr") or c.attr(req, "MsgDescr", "DN")
    return c.join(kind, c.attr(req, "IssueDate"), c.text(req, "Id"), *dx, sep="; ")


def _document(rep: Node, msg: Node, x: _Ctx, inst: Node | None, head: Head) -> Document:
    texts = [
        (c.attr(cm, "Heading", "DN"), c.element_text(c.find(cm, "TextResultValue")))
        for cm in c.findall(rep, "Event/Comment")
    ]
    for inf in c.findall(rep, "Event/InfItem"):
        if c.attr(inf, "Type") in _TEXT_TYPES:
            texts.append((c.attr(inf, "Type", "DN"), c.element_text(c.find(inf, "Observation/Description"))))
    texts += [("Henvisning", _referral(rep)), ("Godkjent", c.attr(rep, "ApprDate"))]
    author = c.text(rep, "RelServProvider/HCP/HCProf/Name") or inst_name(inst)
    descr = c.text(rep, "MsgDescr") or c.attr(rep, "MsgDescr", "DN")
    return Document(
        **x.base(x.key),
        doc_type=c.doc_type("EPIKRISE", "Epikrise"),
        title=descr,
        text=c.sections(texts),
        author=author,
        attachments=head.attachments,
        flags=head.flags,
    )


def _encounter(event: Node | None, x: _Ctx, inst: Node | None) -> Encounter:
    adm = c.find(event, "Service/AdmCat")
    adm_code = adm.get("V") if adm is not None else None
    return Encounter(
        **x.base(f"{x.key}:stay"),
        start=c.parse_time(c.attr(event, "ReportedEvent/StartDateTime")),
        end=c.parse_time(c.attr(event, "ReportedEvent/EndDateTime")),
        encounter_class=_ADM_CLASS.get(adm_code or "", adm.get("DN") if adm is not None else None),
        admission_type=adm.get("DN") if adm is not None else None,
        discharge_disposition=c.attr(event, "AdmOutcome", "DN"),
        facility=inst_name(inst),
    )


def _conditions(event: Node | None, x: _Ctx) -> list[Condition]:
    out, seen = [], set[str]()
    for inf in c.findall(event, "InfItem"):
        concepts = [k for k in map(c.coding_or_text, c.findall(inf, "Observation/CodedDescr/Concept")) if k]
        if not concepts:
            continue
        concept = concepts[0]
        code = c.normalise_code(concept.code)
        star = c.coding(c.find(inf, "Observation/CodedDescr/Modifier/Value"))
        original = c.attr(inf, "Observation/CodedDescr/Concept", "OT")
        text = c.join(
            concept.display,
            original if original != concept.display else None,
            f"stjernekode {c.normalise_code(star.code)} {star.display or ''}".strip() if star else None,
            sep="; ",
        )
        onset, onset_date = c.time_or_date(c.attr(inf, "StartDateTime"))
        alt = tuple(Coding(system=k.system, code=c.normalise_code(k.code), display=k.display) for k in concepts[1:])
        key = c.unique_key(f"{x.key}:dx:{code}", seen)
        out.append(
            Condition(
                **x.base(key),
                code=Coding(system=concept.system, code=code, display=concept.display),
                role=_ROLE.get(c.attr(inf, "Type") or "", "other"),
                text=text,
                alt_codes=alt or None,
                encounter_key=f"{x.key}:stay",
                onset=onset,
                onset_date=onset_date,
            )
        )
    return out


def _medications(event: Node | None, x: _Ctx) -> list[Medication]:
    out, seen = [], set[str]()
    for inf in c.findall(event, "InfItem"):
        med = c.find(inf, "Medication")
        if med is None:
            continue
        start, start_date = c.time_or_date(c.attr(inf, "StartDateTime"))
        end, end_date = c.time_or_date(c.attr(inf, "EndDateTime"))
        drug = c.coding(c.find(med, "DrugId"))
        code = c.normalise_code(drug.code) if drug and c.attr(med, "DrugId") else None
        dose_v, dose_u = c.quantity(c.find(med, "UnitDose"))
        key = c.unique_key(f"{x.key}:med:{code or (drug.code if drug else 'unknown')}", seen)
        out.append(
            Medication(
                **x.base(key),
                code=Coding(system=drug.system, code=code, display=drug.display) if drug and code else None,
                name=drug.display if drug else c.attr(med, "DrugId", "OT") or c.attr(med, "DrugId", "DN"),
                med_status=c.attr(med, "Status", "DN"),
                dosage=c.join(c.join(dose_v, dose_u, sep=" "), c.text(med, "DosageText"), sep="; "),
                comments=(comment,) if (comment := c.text(med, "Comment")) else None,
                start=start,
                end=end,
                start_date=start_date,
                end_date=end_date,
            )
        )
    return out
