"""Dialogmelding 1.0 (``.../dialog/2006-10-11``) and 1.1 (``.../dialog/2013-01-23``), root ``Dialogmelding``
inside MsgHead: notes, requests, answers, error reports, referral status.

One Document per ``Notat`` / ``Foresporsel``:

* key ``kith:dialog:<sender>:<DokIdNotat | DokIdForesp | MsgId>`` (``#n`` when a message has several parts);
* doc type = the MsgHead type (8279: DIALOG_NOTAT, DIALOG_FORESPORSEL, DIALOG_SVAR, DIALOG_AVVIK,
  DIALOG_HELSEFAGLIG, DIALOG_STATUS_HENVISNING);
* title ``TemaKodet/@DN`` or ``Tema`` (Notat), ``TypeForesp/@DN`` (Foresporsel);
* topic ``Tema`` (Notat) / ``EmneSporsmal`` (Foresporsel), topic codes every ``TemaKodet`` / ``TypeForesp``
  (a code without ``V`` keeps its text as display, code ``UNSPECIFIED``); ``DatoNotat`` -> ``document_date``;
* text ``TekstNotatInnhold`` / ``Sporsmal`` (an answer quotes the question it answers after it), and a
  request's ``Formål``, ``Begrunnelse``, ``Hastegrad``, ``FraDato``-``TilDato``, ``TypeJournalinfo`` and
  ``KodetOpplysning`` as labelled sections; ``Merknad`` -> comments;
* author ``RollerRelatertNotat/HealthcareProfessional`` or the MsgHead sender's professional; parties: the
  MsgHead's (:mod:`mappings.kith.head`) and each ``RollerRelatertNotat`` professional as ``author`` (acting for
  ``TilknyttetEnhet/Kontaktenhet`` when given; ``gp`` too when its ``RoleToPatient`` is 6 Fastlege);
* threading: ``conversation_ref`` = ``ConversationRef/RefToConversation`` (the message's own MsgId when it
  starts a thread), ``parent_ref`` = ``RefToParent``; ``attachments`` = the MIME types of MsgHead attachments.

Event time: the latest of the RefDoc ``IssueDate`` and ``GenDate``; status final.
"""

from __future__ import annotations

from engine.model import Coding, Document, MapContext, Party
from mappings.kith import common as c
from mappings.kith import fk1
from mappings.kith import patient as pt
from mappings.kith.head import Head, hcp_name
from mappings.kith.node import Node

_REQUEST_DETAILS = (
    ("Formål", "Formål"),
    ("Begrunnelse", "Begrunnelse"),
    ("Hastegrad", "Hastegrad"),
    ("KodetOpplysning", "Opplysning"),
)


def map_payload(payload: Node, head: Head, ctx: MapContext) -> c.Part:
    part = c.Part()
    scope = head.sender_scope or "unknown"
    subj = pt.resolve([head.patient], scope)
    time = c.event_time(ctx, part.warnings, head.issue_time, head.gen_time)
    prov = ctx.provenance(source_message_id=head.msg_id)
    part.records.append(pt.person(subj, time, prov, parties=head.parties))
    part.links = pt.links(subj)
    seen: set[str] = set()
    for note in payload.elements():
        name = note.name
        if name not in ("Notat", "Foresporsel"):
            continue
        notat = name == "Notat"
        doc_id = c.text(note, "DokIdNotat" if notat else "DokIdForesp") or head.msg_id or "unknown"
        codes = tuple(k for k in map(c.coding_or_text, c.findall(note, "TemaKodet" if notat else "TypeForesp")) if k)
        comment = c.text(note, "Merknad")
        part.records.append(
            Document(
                key=c.unique_key(f"kith:dialog:{scope}:{doc_id}", seen),
                subject=subj.subject,
                event_time=time,
                provenance=prov,
                flags=head.flags,
                parties=fk1.merge(head.parties, _authors(note, scope)),
                comments=(comment,) if comment else None,
                doc_type=c.doc_type(head.msg_type or name.upper(), head.msg_type_dn),
                title=_title(note, name),
                text=_text(note, name),
                author=hcp_name(c.find(note, "RollerRelatertNotat/HealthcareProfessional")) or head.sender_person,
                conversation_ref=head.conversation_ref or head.msg_id,
                parent_ref=head.parent_ref,
                attachments=head.attachments,
                topic=c.text(note, "Tema" if notat else "EmneSporsmal"),
                topic_codes=codes or None,
                document_date=c.parse_date(c.text(note, "DatoNotat")) if notat else None,
            )
        )
    if len(part.records) == 1:
        part.warnings.append("KITH_PART_UNMAPPED:Dialogmelding")
    else:
        part.attachments = head.attachment_data
    return part


def _authors(note: Node, scope: str) -> tuple[Party, ...]:
    """Each ``RollerRelatertNotat`` professional as ``author`` (and ``gp`` when the role says Fastlege)."""
    out: list[Party] = []
    for role in c.findall(note, "RollerRelatertNotat"):
        unit_name, unit_ids = fk1.unit(c.find(role, "TilknyttetEnhet/Kontaktenhet"), scope)
        found = fk1.professional(c.find(role, "HealthcareProfessional"), "author", scope, unit_name, unit_ids)
        out += found
        if found and c.attr(role, "RoleToPatient") == fk1.FASTLEGE:
            out.append(found[0].model_copy(update={"role": "gp"}))
    return tuple(out)


def _title(note: Node, name: str) -> str | None:
    if name == "Notat":
        return c.attr(note, "TemaKodet", "DN") or c.text(note, "Tema")
    return c.attr(note, "TypeForesp", "DN") or c.text(note, "Tema")


def _text(note: Node, name: str) -> str | None:
    if name == "Foresporsel":
        return c.sections([(None, c.element_text(c.find(note, "Sporsmal"))), *_request_details(note)])
    question = c.find(note, "Foresporsel")
    return c.sections(
        [
            (None, c.element_text(c.find(note, "TekstNotatInnhold"))),
            (c.attr(question, "TypeForesp", "DN") or "Spørsmål", c.element_text(c.find(question, "Sporsmal"))),
            *_request_details(question),
        ]
    )


def _request_details(req: Node | None) -> list[tuple[str | None, str | None]]:
    """A request's purpose, reason, urgency, period and the journal information it asks for."""
    if req is None:
        return []
    out: list[tuple[str | None, str | None]] = [(label, _value(c.find(req, tag))) for tag, label in _REQUEST_DETAILS]
    out.append(("Periode", c.join(c.text(req, "FraDato"), c.text(req, "TilDato"), sep=" - ")))
    wanted = [_value(t) for t in c.findall(req, "TypeJournalinfo")]
    out.append(("Journalinformasjon", c.join(*wanted, sep="\n")))
    return out


def _value(node: Node | None) -> str | None:
    """A coded or plain element as text: ``DN`` (else ``OT``, else ``V``) or its own text."""
    if node is None:
        return None
    coding: Coding | None = c.coding_or_text(node)
    return (coding.display or coding.code) if coding else node.text
