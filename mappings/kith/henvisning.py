"""Henvisning 1.1 (``.../henvisning/2012-02-15``, root ``Message``) and 2.0 (``http://ehelse.no/xmlstds/henvisning/
2017-11-30``, root ``Henvisning`` inside MsgHead): referrals.

* 1.1: ``Message/ServReq/{ServType, IssueDate/@V, MsgDescr, Id, Patient (with InfItem), ServProvider, Requester,
  ReasonAsText, Diagnosis/Concept, ReqServ/Priority}``; the sender is ``Requester/HCP/Inst``.
* 2.0: ``Henvisning/{ServType, IssueDate (text), DocumentId, po:AnsvarForRapport, po:TypeInnholdIMelding,
  InfItem, ReasonAsText, ReqComment, Diagnosis/Concept, ReqServ/Priority}``; patient, sender and receiver
  come from the MsgHead.

Referral: key ``kith:henvisning:<sender>:<Id | DocumentId>``; reason = the ``ReasonAsText`` sections, the
clinical ``InfItem`` texts and ``ReqComment``; codes = the diagnoses (ICPC-2 7170 / ICD-10 7110, no dots);
service = ``MsgDescr`` (1.1) or ``TypeInnhold`` (8455, 2.0); priority ``ReqServ/Priority``. ServType C cancels
the referral (same key), M corrects it. Condition per diagnosis, key ``<referral key>:dx:<code>`` (a
``Concept``'s original text ``OT`` beside its display is kept in the text). The reason also carries the 2.0
``PatientPrecaution``, interpreter need (``InfoAssistertKommunikasjon``) and ``Pakkeforlop`` sections;
``Comment`` and ``po:Merknad`` texts are comments.

Parties (on every record): 1.1 ``Requester`` (``requester``), ``ServProvider`` (``performer``: who is asked
to see the patient), ``CopyDest`` (``copy``), ``Patient/PatRelHCP`` by ``Relation`` (``HHE`` requester, ``FLE``
gp) through :mod:`mappings.kith.hcp`; 2.0 the MsgHead's, ``po:AnsvarForRapport/AnsvarligRapport`` by its
``TypeRelasjon`` (``HHE`` requester; else responsible) and ``po:KontaktpersonHelsepersonell/Kontaktperson``
(``gp`` when its ``RoleToPatient`` is 6 Fastlege, else ``other``) through :mod:`mappings.kith.fk1`.
Event time: the latest of ``IssueDate`` and ``GenDate``.
"""

from __future__ import annotations

from engine.errors import ValidationError
from engine.model import Coding, Condition, MapContext, Referral
from mappings.kith import common as c
from mappings.kith import fk1
from mappings.kith import patient as pt
from mappings.kith.head import Head, inst_name, inst_scope, v1_parties
from mappings.kith.node import Node


def map_payload(payload: Node, head: Head, ctx: MapContext) -> c.Part:
    if payload.name == "Message":
        req = c.find(payload, "ServReq")
        if req is None:
            raise ValidationError("Henvisning 1.x without ServReq", code="KITH_MISSING_PART")
        return _map(req, payload, head, ctx, v1=True)
    return _map(payload, payload, head, ctx, v1=False)


def _map(req: Node, msg: Node, head: Head, ctx: MapContext, *, v1: bool) -> c.Part:
    part = c.Part()
    inst = c.find(req, "Requester/HCP/Inst") if v1 else None
    scope = inst_scope(inst) or head.sender_scope or "unknown"
    subj = pt.resolve([head.patient, pt.from_message(c.find(req, "Patient")) if v1 else None], scope)
    msg_id = (c.text(msg, "MsgId") if v1 else None) or head.msg_id
    gen = (c.ts(msg, "GenDate") if v1 else None) or head.gen_time
    time = c.event_time(ctx, part.warnings, c.ts(req, "IssueDate"), gen, head.issue_time)
    doc_id = c.text(req, "Id" if v1 else "DocumentId") or msg_id or "unknown"
    key = f"kith:henvisning:{scope}:{doc_id}"
    prov = ctx.provenance(source_message_id=head.msg_id or msg_id)
    status = c.status_from_servtype(c.attr(req, "ServType"))
    parties = fk1.merge(head.parties, v1_parties(req, scope, _PARTIES) if v1 else fk1.report_parties(req, scope))
    base = {"subject": subj.subject, "event_time": time, "provenance": prov, "status": status, "parties": parties}
    codes, conditions = _diagnoses(req, key, base)
    referral = Referral(
        key=key,
        **base,
        reason=_reason(req),
        codes=tuple(codes),
        priority=c.attr(req, "ReqServ/Priority", "DN") or c.attr(req, "ReqServ/Priority"),
        requester=_requester(req, inst, head, v1),
        recipient=inst_name(c.find(req, "ServProvider/HCP/Inst")) if v1 else head.receiver_name,
        service=c.coding(c.find(req, "MsgDescr" if v1 else "TypeInnholdIMelding/TypeInnhold")),
        comments=c.texts(req, "Comment"),
        attachments=head.attachments or None,
        flags=head.flags,
    )
    part.records += [pt.person(subj, time, prov, parties=parties), referral, *conditions]
    part.links = pt.links(subj)
    part.attachments = head.attachment_data
    return part


def _reason(req: Node) -> str | None:
    items = [
        (c.attr(r, "Heading", "DN"), c.element_text(c.find(r, "TextResultValue")))
        for r in c.findall(req, "ReasonAsText")
    ]
    for inf in req.descendants("InfItem"):
        items.append((c.attr(inf, "Type", "DN"), c.element_text(c.find(inf, "Observation/Description"))))
    items += [("Forholdsregel", c.text(p, "Precaution")) for p in c.findall(req, "PatientPrecaution")]
    for need in c.findall(req, "InfoAssistertKommunikasjon/AssistertKommunikasjon"):
        items.append(("Tolkebehov", c.join(c.attr(need, "BehovTolkSprak", "DN"), c.text(need, "Merknad"), sep=": ")))
    items += [
        ("Pakkeforløp", c.attr(p, "Pakkeforlop", "DN") or c.element_text(p)) for p in c.findall(req, "Pakkeforlop")
    ]
    items.append(("Kommentar", c.text(req, "ReqComment")))
    for facts in c.findall(req, "TilleggsopplysningPasient"):
        items.append(("Sivilstatus", fk1.patient_facts(facts)))
    for kin in (*c.findall(req, "ParorendeForesatt"), *c.findall(req, "Patient/ParorendeForesatt")):
        items.append(("Pårørende", fk1.next_of_kin(kin)))
    return c.sections(items)


#: the v1.x wrappers that name parties on a referral, and their roles
_PARTIES = (
    ("Requester", "requester"),
    ("ServProvider", "performer"),
    ("CopyDest", "copy"),
    ("Patient/PatRelHCP", "other"),
)


def _requester(req: Node, inst: Node | None, head: Head, v1: bool) -> str | None:
    if v1:
        return c.join(c.text(inst, "HCPerson/Name"), inst_name(inst))
    return c.join(head.sender_person, head.sender_name)


def _diagnoses(req: Node, key: str, base: dict[str, object]) -> tuple[list[Coding], list[Condition]]:
    codes: list[Coding] = []
    conditions: list[Condition] = []
    seen: set[str] = set()
    for concept_el in c.findall(req, "Diagnosis/Concept"):
        concept = c.coding_or_text(concept_el)
        if concept is None:
            continue
        coding = Coding(system=concept.system, code=c.normalise_code(concept.code), display=concept.display)
        codes.append(coding)
        original = concept_el.get("OT")
        conditions.append(
            Condition(
                key=c.unique_key(f"{key}:dx:{coding.code}", seen),
                **base,
                code=coding,
                text=c.join(concept.display, original if original != concept.display else None, sep="; "),
            )
        )
    return codes, conditions
