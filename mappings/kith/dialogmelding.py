"""Dialogmelding 1.0 (``.../dialog/2006-10-11``) and 1.1 (``.../dialog/2013-01-23``), root ``Dialogmelding``
inside MsgHead: notes, requests, answers, error reports, referral status.

One Document per ``Notat`` / ``Foresporsel``:

* key ``kith:dialog:<sender>:<DokIdNotat | DokIdForesp | MsgId>`` (``#n`` when a message has several parts);
* doc type = the MsgHead type (8279: DIALOG_NOTAT, DIALOG_FORESPORSEL, DIALOG_SVAR, DIALOG_AVVIK,
  DIALOG_HELSEFAGLIG, DIALOG_STATUS_HENVISNING);
* title ``TemaKodet/@DN`` or ``Tema`` (Notat), ``TypeForesp/@DN`` (Foresporsel);
* text ``TekstNotatInnhold`` / ``Sporsmal`` (an answer quotes the question it answers after it);
* author ``RollerRelatertNotat/HealthcareProfessional`` or the MsgHead sender's professional;
* threading: ``conversation_ref`` = ``ConversationRef/RefToConversation`` (the message's own MsgId when it
  starts a thread), ``parent_ref`` = ``RefToParent``; ``attachments`` = the MIME types of MsgHead attachments.

Event time: the latest of the RefDoc ``IssueDate`` and ``GenDate``; status final.
"""

from __future__ import annotations

from engine.model import Document, MapContext
from mappings.kith import common as c
from mappings.kith import patient as pt
from mappings.kith.head import Head, hcp_name
from mappings.kith.node import Node


def map_payload(payload: Node, head: Head, ctx: MapContext) -> c.Part:
    part = c.Part()
    scope = head.sender_scope or "unknown"
    subj = pt.resolve([head.patient], scope)
    time = c.event_time(ctx, part.warnings, head.issue_time, head.gen_time)
    prov = ctx.provenance(source_message_id=head.msg_id)
    part.records.append(pt.person(subj, time, prov))
    part.links = pt.links(subj)
    seen: set[str] = set()
    for note in payload.elements():
        name = note.name
        if name not in ("Notat", "Foresporsel"):
            continue
        doc_id = c.text(note, "DokIdNotat" if name == "Notat" else "DokIdForesp") or head.msg_id or "unknown"
        part.records.append(
            Document(
                key=c.unique_key(f"kith:dialog:{scope}:{doc_id}", seen),
                subject=subj.subject,
                event_time=time,
                provenance=prov,
                doc_type=c.doc_type(head.msg_type or name.upper(), head.msg_type_dn),
                title=_title(note, name),
                text=_text(note, name),
                author=hcp_name(c.find(note, "RollerRelatertNotat/HealthcareProfessional")) or head.sender_person,
                conversation_ref=head.conversation_ref or head.msg_id,
                parent_ref=head.parent_ref,
                attachments=head.attachments,
            )
        )
    if len(part.records) == 1:
        part.warnings.append("KITH_PART_UNMAPPED:Dialogmelding")
    return part


def _title(note: Node, name: str) -> str | None:
    if name == "Notat":
        return c.attr(note, "TemaKodet", "DN") or c.text(note, "Tema")
    return c.attr(note, "TypeForesp", "DN") or c.text(note, "Tema")


def _text(note: Node, name: str) -> str | None:
    if name == "Foresporsel":
        return c.element_text(c.find(note, "Sporsmal"))
    question = c.find(note, "Foresporsel")
    return c.sections(
        [
            (None, c.element_text(c.find(note, "TekstNotatInnhold"))),
            (c.attr(question, "TypeForesp", "DN") or "Spørsmål", c.element_text(c.find(question, "Sporsmal"))),
        ]
    )
