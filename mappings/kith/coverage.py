"""Coverage support of the KITH mapping (:mod:`engine.coverage`): the leaves of a document and what the
mapping declares.

Leaves: every element with non-whitespace text (its own text and the text between its children) and every
attribute but the XML Schema instance ones (``xsi:schemaLocation``; namespace declarations are not
attributes), at the path of local names from the root without indexes, an attribute as ``@name``:
``MsgHead/MsgInfo/Type/@V``. A payload carried in ``MsgHead/Document/RefDoc/Content`` starts a path of its
own (``Message/ServReport/ResultItem/Analysed/@V``), so one declaration serves the standalone and the
MsgHead shapes.

:data:`MAPPED` lists the paths whose values the mapping transforms; :data:`IGNORED` the transport and
schema paths, each with its reason. ``*/tail`` matches ``tail`` at any depth.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from engine.coverage import Declarations
from engine.model import MapContext
from mappings.kith.xml import DEFAULT_MAX_BYTES, local, parse_xml, tag_name

__all__ = ["IGNORED", "MAPPED", "declarations", "leaves"]

_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"

#: paths whose values the mapping reads and re-expresses (so their text is not in the result)
MAPPED: dict[str, str] = {
    "Message/ServReport/ServType/@V": "report service type: the record status (mappings.kith.status)",
    "Message/ServReport/Status/@V": "report status: the record status (mappings.kith.status)",
    "*/ResultItem/ServType/@V": "item service type: the record status (mappings.kith.status)",
    "*/ResultItem/StatusInvestigation/@V": "investigation status: the record status (mappings.kith.status)",
    "Message/ServRprt/ServType/@V": "report service type: the record status",
    "Message/ServRprt/Status/@V": "report status: the record status",
    "Henvisning/ServType/@V": "service type: the record status",
    "Message/ServReq/ServType/@V": "service type: the record status",
    "*/Patient/Sex/@V": "sex code (male/female/unknown)",
}

# Svarrapport / Rekvisisjon: values the result mapping reads and re-expresses (mappings.kith.svarrapport, order)
MAPPED.update(
    {
        "*/ResultItem/IdResultItem": "result item id: normalised into the observation's key (svarrapport._item_key)",
        "*/ResultItem/RefAnalysedSubject": "the item's sample reference: resolved to the observation's specimen "
        "and specimen_key (svarrapport._sample_of)",
        "*/AnalysedSubject/IdByServProvider": "the lab's sample id: the Specimen's sample_id and key",
        "*/ResultItem/DevResultInd/@V": "deviation indicator: mapped to the abnormal flag H/L/A",
        "*/ResultItem/NumResult/NumResultValue/@U": "unit: normalised (units.normalise_unit) into the unit",
    }
)

#: transport and schema paths: how the document travelled and which schema it follows, not its content
IGNORED: dict[str, str] = {
    "MsgHead/MsgInfo/Type/*": "message type of the transport head (the payload's own type is read)",
    "MsgHead/MsgInfo/MIGversion": "version of the head's implementation guide: schema",
    "MsgHead/MsgInfo/GenDate": "time the transport head was generated",
    "MsgHead/MsgInfo/MsgId": "transport id of the head (acknowledged by the AppRec)",
    "MsgHead/MsgInfo/Ack/*": "acknowledgement request: transport",
    "MsgHead/Document/RefDoc/MsgType/@V": "payload kind in the transport head (the payload itself is read)",
    "MsgHead/Document/RefDoc/MsgType/@DN": "payload kind in the transport head (the payload itself is read)",
    "MsgHead/Document/RefDoc/MimeType": "payload content type in the transport head",
    "MsgHead/Document/DocumentConnection/*": "transport link between head documents",
    "*/MIGversion": "version of the message implementation guide: schema",
    "MsgHead/Document/RefDoc/IssueDate/@V": "issue date in the transport head's document reference (the "
    "payload's own dates are read)",
}
# the code list's label of a code whose value (@V) is mapped to a status or a sex: not the sender's text
_LABEL = "label of a code list value whose @V is mapped (to a status or a sex), not the sender's own text"
IGNORED.update({p.removesuffix("@V") + "@DN": _LABEL for p in MAPPED if p.endswith("@V")})


def declarations(ctx: MapContext) -> Declarations:
    """The KITH declarations (the same for every context)."""
    return _DECLARATIONS


_DECLARATIONS = Declarations(mapped=MAPPED, ignored=IGNORED)


def leaves(raw: bytes, ctx: MapContext) -> Iterator[tuple[str, str]]:
    """Every non-empty (path, value) of the document ``raw``, in document order."""
    root = parse_xml(raw, max_bytes=int(ctx.options.get("max_bytes", DEFAULT_MAX_BYTES)))
    yield from _element(root, local(root))


def _element(el: etree._Element, path: str) -> Iterator[tuple[str, str]]:
    for key, value in el.attrib.items():
        attr, text = str(key), str(value)
        if not attr.startswith(_XSI) and text.strip():
            yield f"{path}/@{attr[attr.find('}') + 1 :]}", text
    own = "".join([el.text or "", *(child.tail or "" for child in el)])
    if own.strip():
        yield path, own
    payload_parent = path.endswith("MsgHead/Document/RefDoc/Content")
    for child in el:
        name = tag_name(child.tag)
        if name is None:
            continue  # a comment or processing instruction
        restart = payload_parent and name != "Base64Container"
        yield from _element(child, name if restart else f"{path}/{name}")


# KITH document families (dialogmelding, epikrise, henvisning, PLO): values the mappings read and re-express
MAPPED.update(
    {
        "*/InformasjonOmForsendelsen/Forsendelsesstatus/@V": "PLO dispatch status (N/M/C): the record status",
        "Message/ServRprt/IssueDate/@V": "report issue date: the event time (the latest of it and GenDate)",
        "Message/ServReq/IssueDate/@V": "referral issue date: the event time (the latest of it and GenDate)",
        "Message/ServRprt/Event/InfItem/Type/@V": "item type: which part of the epicrisis the item becomes",
        "Message/ServRprt/Event/InfItem/Medication/Status/@V": "medication status: the label (@DN) is kept",
        "*/Ident/TypeId/@V": "id type (HPR, HER, ENH, ...): the party id's system",
        "Dialogmelding/Notat/TemaKodet/@V": "topic code: the document's topic codes",
        "*/Foresporsel/TypeForesp/@V": "request type code: the document's topic codes",
        "*/Foresporsel/TypeForesp/@S": "request type code system: the topic code's system",
        "*/Forskrivningsinfo/Styrke/@V": "strength: the medication's dosage text",
        "*/Forskrivningsinfo/Legemiddelform/@V": "dosage form code: its label (@DN) in the dosage text",
        "*/ForenkletForskrivning/StatusTilForskrivningen/@V": "prescription status code: its label is the "
        "medication status",
        "*/Forskrivningsinfo/Bruk/@V": "use code (regular / as needed): its label is the medication status",
        "*/Journaltekst/Overskriftskode/@V": "heading code of a journal note: its label heads the note's text",
        "*/MedisinskDiagnose/Hoveddiagnose": "main diagnosis flag: the condition's role (main / secondary)",
        "*/TilleggsopplysningPasient/SivilStatus/@V": "marital status code: its label in the document text",
        "*/TilleggsopplysningPasient/BorAlene": "lives alone flag: 'bor alene' in the document text",
        "*/ParorendeForesatt/Slektskap/@V": "relation code of the next of kin: its label in the document text",
        "*/KartlagtFunksjon/Funksjonsvariabel/@V": "IPLOS function code: its label in the document text",
        "*/KartlagtFunksjon/Vurdering": "IPLOS function score: '<function>: <score>' in the document text",
        "*/HCProf/TypeId/@V": "id type of a professional (HPR, ...): the party id's system",
        "*/ForenkletForskrivning/InngaarIMultidose/@V": "multidose code: its label is a medication comment",
        "*/Forskrivningsinfo/SkalIkkeTasSammenMedAnnetLegemiddel": "flag: a medication comment when true",
        "*/FasteHjelpemidler/HjelpemiddelHorsel/@V": "hearing aid code: its label in the document text",
        "*/FasteHjelpemidler/Briller/@V": "glasses code: its label in the document text",
        "*/FasteHjelpemidler/Pacemaker": "pacemaker flag: 'Pacemaker' in the document text when true",
        "*/StatusHjelpemiddel/Status/@V": "aid status code: its label in the document text",
        "*/RoleToPatient/@V": "a professional's role to the patient: Party.relation (6 Fastlege also the gp role)",
        "*/RoleToPatient/@S": "code system of the role to the patient: Party.relation",
        "*/TypeHealthcareProfessional/@V": "a professional's profession: Party.qualification",
        "*/Patient/Name": "patient name 'Family, Given': the Person's family and given names",
        "Message/Type/@V": "message type: the result's message type",
        "Message/ServReq/Patient/InfItem/Type/@V": "item type code: its label heads the item's text",
        "*/TidsfestetHendelse/Hendelsekode/@V": "event code (9121): the care event's code",
        "*/TidsfestetHendelse/Anslag": "estimated time flag: '(tidspunkt anslått)' beside the time when true",
        "*/Allergi/HensynVedForskrivning": "allergy flag: its label in the allergy text when true",
        "*/Allergi/HensynMatDrikke": "allergy flag: its label in the allergy text when true",
        "*/Allergi/Kontaktallergi": "allergy flag: its label in the allergy text when true",
        "*/Allergi/PollenInnsektstikk": "allergy flag: its label in the allergy text when true",
        "*/Allergi/VirkestoffLegemiddel/@V": "ATC code of the allergen: in the allergy text",
        "*/TilleggsopplysningPasient/Sprak/@V": "language code: its label in the document text",
        "Henvisning/IssueDate": "referral issue date: the event time (the latest of it and GenDate)",
        "*/AnsvarForRapport/TypeRelasjon/@V": "relation of the responsible professional (HHE, ...): the party's role",
        "*/Relation/@V": "relation code of a professional (FLE, HHE, ...): the party's role",
        "Message/ServRprt/Event/Comment/Heading/@V": "section heading code (8311): its label heads the section text",
        "Message/ServRprt/Event/InfItem/Medication/DrugId/@V": "ATC code: the medication code, without spaces",
        "Message/ServRprt/Event/Service/AdmCat/@V": "admission category: the encounter class (1 -> inpatient)",
        "Message/ServRprt/Event/AdmOutcome/@V": "admission outcome code: its label is the discharge disposition",
        "*/ReasonAsText/Heading/@V": "heading code of a reason text: its label heads the text",
        "Henvisning/InfItem/Type/@V": "item type code: its label heads the item's text",
        "*/ReqServ/Priority/@V": "priority code: its label is the referral priority",
        "*/AssistertKommunikasjon/BehovTolkSprak/@V": "interpreter language code: its label in the document text",
    }
)
# the code list's label of a code whose value (@V) is mapped above
IGNORED.update({p.removesuffix("@V") + "@DN": _LABEL for p in list(MAPPED) if p.endswith("@V") and "@DN" not in p})
_ID_TYPE = "code list OID or label of an id type whose code (TypeId/@V) is read: the id's system already says it"
_PLO_COMPONENT = "PLO schema component metadata (component id and type of the element): structure, not content"
IGNORED.update(
    {
        "*/Ident/TypeId/@S": _ID_TYPE,
        "*/Ident/TypeId/@DN": _ID_TYPE,
        "*/Inst/TypeId/@DN": _ID_TYPE,
        "*/Dept/TypeId/@DN": _ID_TYPE,
        "*/HCPerson/TypeId/@DN": _ID_TYPE,
        "*/HCProf/TypeId/@DN": _ID_TYPE,
        "*/Patient/TypeOffId/@DN": "label of the patient's id type: the identity link's system already says it",
        "*/@komponenttype": _PLO_COMPONENT,
        "*/@komponentID": _PLO_COMPONENT,
        "*/@basiskomponenttype": _PLO_COMPONENT,
        "*/ComMethod/@V": "communication method of a party (EDI): routing",
        "*/ComMethod/@DN": "communication method of a party (EDI): routing",
        "MsgHead/MsgInfo/ConversationRef/*": "conversation references of the transport head: routing",
        "MsgHead/MsgInfo/OtherReceiver/*": "further receivers of the transport head: routing",
        "*/TeleCom/TypeTelecom/@DN": "label of the telecom type code: code-list metadata",
        "*/Address/Type/@DN": "label of the address type code: code-list metadata",
        "*/@informasjonskategori": "PLO category of a component (Legemidler, Cave/allergier): the element's "
        "own name says it",
        "*/Overskriftskode/@S": "code list OID of a heading code: code-list metadata",
        "*/Funksjonsvariabel/@S": "code list OID of the IPLOS function code (9111): code-list metadata",
        "*/IPLOStjenestetype/@S": "code list OID of the IPLOS service type: code-list metadata",
        "*/TypeInnholdIMelding/TypeInnhold/@S": "code list OID of the PLO content type: code-list metadata",
        "*/ReasonAsText/Heading/@S": "code list OID of a heading code: code-list metadata",
        "Henvisning/InfItem/Type/@S": "code list OID of the item type: code-list metadata",
        "*/CodedDescr/Modifier/Name/@V": "name of the ICD-10 modifier (star code): the modifier's value is kept",
        "*/CodedDescr/Modifier/Name/@DN": "name of the ICD-10 modifier (star code): the modifier's value is kept",
        "*/AnsvarForRapport/TypeRelasjon/@S": "code list OID of a relation code mapped to a role: code-list metadata",
        "*/AnsvarForRapport/TypeRelasjon/@DN": "label of a relation code mapped to a role: code-list metadata",
        "Message/Type/@DN": "label of the message type code (@V is the message type): code-list metadata",
        "*/Requester/Role/@V": "role code of the Requester wrapper (REQ): the wrapper already gives the party's role",
        "*/Requester/Role/@DN": "role code of the Requester wrapper (REQ): the wrapper already gives the party's role",
        "*/ServProvider/Role/@V": "role code of the ServProvider wrapper (SPR): the wrapper already gives the role",
        "*/ServProvider/Role/@DN": "role code of the ServProvider wrapper (SPR): the wrapper already gives the role",
        "*/ReqServ/ServType/@V": "service type of the requested service (N/M/C): the referral's own ServType gives "
        "the status",
        "*/ReqServ/ServType/@DN": "label of the requested service's service type: code-list metadata",
        "*/Allergi/VirkestoffLegemiddel/@S": "code list OID of the allergen's ATC code: code-list metadata",
        "Message/Status/@V": "processing status of the message (TEST for test messages): transport",
        "Message/Status/@DN": "processing status of the message (TEST for test messages): transport",
    }
)
