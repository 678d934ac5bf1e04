"""PLO 1.5 / 1.6 / 2.0 (pleie- og omsorgsmeldinger, ``.../po/<Name>/<date>`` on kith.no or ehelse.no) inside
MsgHead. The payload root is in the message's own namespace, its children mostly in poKomponent (and epj1/2/3,
fk1), so paths match any namespace.

* ``Pasientlogistikk`` (LOG_INNLAGT, LOG_UTSKRIVNINGSKLAR, LOG_AVMELDING, LOG_UTSKREVET, LOG_DOD): a CareEvent
  per ``TidsfestetHendelse`` with a ``Hendelsekode`` (9121: 1 admitted, 3 ready for discharge, 4 avmelding,
  5 discharged, 13 deceased; the code and its DN are kept), ``BeskrivelseAvHendelse``,
  ``TidspunktForHendelse/@V``, facility ``TilknyttetEnhet/Kontaktenhet``. Event 13 sets ``Person.deceased_at``.
* Care reports (Innleggelsesrapport, TverrfagligEpikrise = Utskrivningsrapport, HelseopplysningerTilLege
  ``Konsultasjon``, MedisinskeOpplysninger, OrienteringOmTjenestetilbud, Helseopplysninger ...): a Document
  (doc type = MsgHead type, text = the ``Journaltekst`` sections by ``Overskriftskode`` plus cave, events,
  measures and remarks), Conditions from ``InfoMedisinskDiagnose/MedisinskDiagnose`` (``Hoveddiagnose`` true ->
  main; ICD-10 7110 / ICPC-2 7170) and Medications from ``epj3:Legemiddelinfo`` (name, strength, dosage,
  use, start/end; keyed by ``komponentID``).

Also in the Document text: the IPLOS function scores (``KartlagtFunksjon``: ``Funksjonsvariabel`` DN and
``Vurdering``), next of kin (``ParorendeForesatt``: relation, name, phone, remark), civil status and living
alone (``TilleggsopplysningPasient``), the service start date and the approval date (``GodkjentDato``).
A drug's ``Merknad`` -> the Medication's comments, its form (``Legemiddelform``) is part of the dosage;
date-only start/end -> ``start_date``/``end_date``, a date-only event time -> ``occurred_date``.

Parties (on every record): the MsgHead's, ``AnsvarForRapport/AnsvarligRapport`` (``responsible``, or the role
of its ``TypeRelasjon``), ``KontaktpersonHelsepersonell`` (:func:`mappings.kith.fk1.report_parties`) and the
``TilknyttetEnhet/Kontaktenhet`` unit as ``other``.

Keys: ``kith:plo:<sender>:<MsgId>``; a correction or cancellation (``Forsendelsesstatus`` M/C) refers to the
original by ``ConversationRef/RefToParent`` and so shares its keys. Children: ``<key>:event:<code>``,
``<key>:dx:<code>``, ``<key>:med:<komponentID>``. Event time: the latest of RefDoc ``IssueDate`` and ``GenDate``.
"""

from __future__ import annotations

from engine.model import CareEvent, Coding, Condition, Document, MapContext, Medication, Party, RecordStatus
from mappings.kith import common as c
from mappings.kith import fk1
from mappings.kith import patient as pt
from mappings.kith.head import Head, hcp_name, org_name
from mappings.kith.node import Node

DECEASED = "13"
_LABELS = {
    "CaveStikkord": "Cave",
    "IntervensjonTiltakBeskrivelse": "Iverksatte tiltak",
    "MerknadTilLegemiddeladministrering": "Legemiddeladministrering",
    "EndringFunksjonsnivaa": "Endring i funksjonsnivå",
    "BetegnelseTjeneste": "Eksisterende tjeneste",
    "StedTime": "Kontrolltime",
}


def map_payload(payload: Node, head: Head, ctx: MapContext) -> c.Part:
    part = c.Part()
    scope = head.sender_scope or "unknown"
    subj = pt.resolve([head.patient], scope)
    status = c.status_from_servtype(c.attr(payload, "InformasjonOmForsendelsen/Forsendelsesstatus"))
    doc_id = head.parent_ref if status is not RecordStatus.FINAL and head.parent_ref else head.msg_id
    key = f"kith:plo:{scope}:{doc_id or 'unknown'}"
    time = c.event_time(ctx, part.warnings, head.issue_time, head.gen_time)
    parties = fk1.merge(head.parties, fk1.report_parties(payload, scope), _units(payload, scope))
    prov = ctx.provenance(head.msg_id)
    base = {
        "subject": subj.subject,
        "event_time": time,
        "provenance": prov,
        "status": status,
        "parties": parties,
    }
    if payload.name == "Pasientlogistikk":
        records: list[object] = _care_events(payload, key, base, head)
    else:
        records = [
            _document(payload, key, base, head),
            *_conditions(payload, key, base),
            *_medications(payload, key, base),
        ]
    death = next(
        (
            r
            for r in records
            if isinstance(r, CareEvent) and r.event_code.code == DECEASED and r.status is not RecordStatus.CANCELLED
        ),
        None,
    )
    deceased = (death.occurred_at, death.occurred_date) if death is not None else (None, None)
    person = pt.person(subj, time, prov, deceased=deceased, parties=parties)
    part.records += [person, *records]
    part.links = pt.links(subj)
    part.attachments = head.attachment_data if payload.name != "Pasientlogistikk" else ()
    if len(records) == 0:
        part.warnings.append(f"KITH_PART_UNMAPPED:{payload.name}")
    return part


def _units(payload: Node, scope: str) -> tuple[Party, ...]:
    found: list[Party] = []
    for unit in c.findall(payload, "TilknyttetEnhet/Kontaktenhet"):
        found += fk1.organisation(unit, "other", scope)
    return tuple(found)


def _care_events(payload: Node, key: str, base: dict[str, object], head: Head) -> list[object]:
    facility = org_name(c.find(payload, "TilknyttetEnhet/Kontaktenhet")) or head.sender_name
    out: list[object] = []
    seen: set[str] = set()
    for event in payload.descendants("TidsfestetHendelse"):
        code = c.coding_or_text(c.find(event, "Hendelsekode"))
        if code is None:
            continue
        at, on = c.time_or_date(c.attr(event, "TidspunktForHendelse"))
        out.append(
            CareEvent(
                key=c.unique_key(f"{key}:event:{code.code}", seen),
                **base,
                event_code=code,
                description=c.join(c.text(event, "BeskrivelseAvHendelse"), _estimated(event), sep=" "),
                facility=facility,
                occurred_at=at,
                occurred_date=on,
            )
        )
    return out


def _document(payload: Node, key: str, base: dict[str, object], head: Head) -> Document:
    name = payload.name
    author = hcp_name(c.find(payload, "AnsvarForRapport/AnsvarligRapport")) or head.sender_person
    return Document(
        key=key,
        **base,
        doc_type=c.doc_type(head.msg_type or name.upper(), head.msg_type_dn),
        title=head.msg_type_dn or name,
        text=c.sections(_texts(payload)),
        author=c.join(author, head.sender_name),
        attachments=head.attachments,
        flags=head.flags,
    )


def _texts(payload: Node) -> list[tuple[str | None, str | None]]:
    out: list[tuple[str | None, str | None]] = []
    functions: list[str | None] = []
    for el in payload.descendants("*"):
        name = el.name
        if name in _MORE:
            found = _MORE[name](el)
            if name == "KartlagtFunksjon":
                functions.append(found)
            else:
                out.append((_MORE_LABELS[name], found))
            continue
        if name == "Journaltekst":
            body = c.join(c.text(el, "Notat"), c.text(el, "Merknad"), sep="\n")
            out.append((c.attr(el, "Overskriftskode", "DN"), c.clean_text(body)))
        elif name == "TidsfestetHendelse":
            when = c.join(c.attr(el, "TidspunktForHendelse"), _estimated(el), sep=" ")
            out.append(("Hendelse", c.join(c.text(el, "BeskrivelseAvHendelse"), when, sep=": ")))
        elif name == "SamletVurderingFunksjonsniva":
            out.append(("Funksjonsnivå", c.text(el, "Merknad")))
        elif name in _LABELS:
            out.append((_LABELS[name], c.element_text(el)))
    out.append(("Kartlagt funksjon (IPLOS)", c.join(*functions, sep="\n")))
    return out


def _function(el: Node) -> str | None:
    return c.join(
        c.attr(el, "Funksjonsvariabel", "DN") or c.attr(el, "Funksjonsvariabel"), c.text(el, "Vurdering"), sep=": "
    )


def _given_at_transfer(el: Node) -> str | None:
    """``<drug> <strength> <form>: <dose given> (<time>)`` of a drug given by staff before the transfer."""
    fi = c.find(el, "Forskrivningsinfo")
    strength = c.join(*c.quantity(c.find(fi, "Styrke")), sep=" ")
    drug = c.join(c.text(fi, "Navn"), strength, c.attr(fi, "Legemiddelform", "DN"), sep=" ")
    start = c.attr(el, "AdmStart")
    return c.join(drug, c.join(c.text(fi, "DosVeiledEnkel"), f"({start})" if start else None, sep=" "), sep=": ")


def _service(el: Node) -> str | None:
    return c.join(c.attr(el, "IPLOStjenestetype", "DN"), c.text(el, "Startdato"), sep="; ")


def _approved(el: Node) -> str | None:
    return c.text(el, "GodkjentDato")


def _estimated(event: Node) -> str | None:
    """``(tidspunkt anslått)`` when a TidsfestetHendelse's time is an estimate (``Anslag`` true)."""
    return "(tidspunkt anslått)" if (c.text(event, "Anslag") or "").lower() == "true" else None


_ALLERGY_FLAGS = (
    ("HensynVedForskrivning", "hensyn ved forskrivning"),
    ("HensynMatDrikke", "hensyn ved mat og drikke"),
    ("Kontaktallergi", "kontaktallergi"),
    ("PollenInnsektstikk", "pollen/insektstikk"),
)


def _allergy(el: Node) -> str | None:
    """``<agent> (<ATC>); <flags that are true>``: what the patient reacts to and what it means."""
    atc = c.attr(el, "VirkestoffLegemiddel")
    agent = c.join(c.text(el, "AllergiskMot"), f"({atc})" if atc else None, sep=" ")
    flags = [label for tag, label in _ALLERGY_FLAGS if (c.text(el, tag) or "").lower() == "true"]
    return c.join(agent, *flags, sep="; ")


def _fixed_aids(el: Node) -> str | None:
    pacemaker = (c.text(el, "Pacemaker") or "").lower() == "true"
    aids = (c.attr(el, "HjelpemiddelHorsel", "DN"), c.attr(el, "Briller", "DN"), "Pacemaker" if pacemaker else None)
    return c.join(*aids, c.text(el, "Merknad"), sep="; ")


def _aid(el: Node) -> str | None:
    status = c.attr(el, "Status", "DN")
    name = c.text(el, "Hjelpemiddelbeskrivelse/BetegnelseHjelpemiddel")
    return c.join(name, f"({status})" if status else None, sep=" ")


_MORE = {
    "AdmAvHelsepersonell": _given_at_transfer,
    "Allergi": _allergy,
    "FasteHjelpemidler": _fixed_aids,
    "StatusHjelpemiddel": _aid,
    "KartlagtFunksjon": _function,
    "ParorendeForesatt": fk1.next_of_kin,
    "TilleggsopplysningPasient": fk1.patient_facts,
    "EksisterendeTjeneste": _service,
    "AnsvarForRapport": _approved,
}
_MORE_LABELS = {
    "AdmAvHelsepersonell": "Gitt ved overføring",
    "Allergi": "Allergisk mot",
    "FasteHjelpemidler": "Faste hjelpemidler",
    "StatusHjelpemiddel": "Hjelpemiddel",
    "ParorendeForesatt": "Pårørende",
    "TilleggsopplysningPasient": "Sivilstatus",
    "EksisterendeTjeneste": "Tjeneste",
    "AnsvarForRapport": "Godkjent",
}


def _conditions(payload: Node, key: str, base: dict[str, object]) -> list[Condition]:
    out, seen = [], set[str]()
    for dx in [d for i in payload.descendants("InfoMedisinskDiagnose") for d in i.findall("MedisinskDiagnose")]:
        code = c.coding_or_text(c.find(dx, "Diagnosekode"))
        if code is None:
            continue
        norm = Coding(system=code.system, code=c.normalise_code(code.code), display=code.display)
        main = (c.text(dx, "Hoveddiagnose") or "").lower() == "true"
        out.append(
            Condition(
                key=c.unique_key(f"{key}:dx:{norm.code}", seen),
                **base,
                code=norm,
                role="main" if main else "secondary",
                text=c.join(code.display, c.text(dx, "DiagnoseBeskrivelse")),
            )
        )
    return out


def _medications(payload: Node, key: str, base: dict[str, object]) -> list[Medication]:
    out, seen = [], set[str]()
    for info in payload.descendants("Legemiddelinfo"):
        rx = c.find(info, "ForenkletForskrivning")
        fi = c.find(rx, "Forskrivningsinfo")
        name = c.text(fi, "Navn")
        strength = c.join(*c.quantity(c.find(fi, "Styrke")), sep=" ")
        ident = info.get("komponentID") or name or "unknown"
        start, start_date = c.time_or_date(c.attr(fi, "DoseringStarttidspunkt"))
        end, end_date = c.time_or_date(c.attr(fi, "DoseringSluttidspunkt"))
        form = c.attr(fi, "Legemiddelform", "DN")
        out.append(
            Medication(
                key=c.unique_key(f"{key}:med:{ident}", seen),
                **base,
                name=name,
                dosage=c.join(c.join(strength, form, sep=" "), c.text(fi, "DosVeiledEnkel"), sep="; "),
                med_status=c.attr(rx, "StatusTilForskrivningen", "DN") or c.attr(fi, "Bruk", "DN"),
                start=start,
                end=end,
                start_date=start_date,
                end_date=end_date,
                comments=_med_comments(rx, fi),
            )
        )
    return out


_NOT_WITH_OTHERS = "Skal ikke tas sammen med annet legemiddel"


def _med_comments(rx: Node | None, fi: Node | None) -> tuple[str, ...] | None:
    """The prescription's remark, its multidose label and the warning a ``SkalIkkeTasSammenMedAnnetLegemiddel``
    flag of true gives; None when there is none (a record without them keeps its content hash)."""
    alone = (c.text(fi, "SkalIkkeTasSammenMedAnnetLegemiddel") or "").lower() == "true"
    found = [c.text(rx, "Merknad"), c.attr(rx, "InngaarIMultidose", "DN"), _NOT_WITH_OTHERS if alone else None]
    kept = tuple(x for x in found if x)
    return kept or None
