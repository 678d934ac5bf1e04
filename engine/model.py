"""The canonical model: what every mapping produces and the journal stores.

Every record has a stable ``key`` given by its source (same key = same clinical fact), the
``subject`` identifier it is about, the source ``event_time`` (when it happened or was issued at
the source, never when we received it), a ``status``, and ``provenance``. The version of a record
is its content without provenance; its hash breaks ties between equal event times.

Models are frozen. ``repr()`` of an identifier or a person is masked, so a model that reaches a
log line by accident carries no personal data.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine import ids


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordStatus(str, enum.Enum):
    FINAL = "final"
    PRELIMINARY = "preliminary"
    CORRECTED = "corrected"
    CANCELLED = "cancelled"


class Coding(_Frozen):
    """A coded value: ``system`` is an OID (Volven ``2.16.578.1.12.4.1.1.nnnn``) or a local name."""

    system: str | None = None
    code: str
    display: str | None = None


class PartyId(_Frozen):
    """A practitioner's or organisation's id: ``system`` is an OID (HPR, HER, ENH, RESH in :mod:`engine.ids`)
    or a scoped local name (``urn:enjournal:local:<source>``)."""

    system: str
    value: str


class Party(_Frozen):
    """A practitioner or an organisation named on a record, in a role.

    ``role`` is one of :data:`PARTY_ROLES`. A practitioner's ``organization`` is the name of the
    organisation (or department) they acted for, when the source says so.
    """

    role: str
    kind: Literal["practitioner", "organization"]
    name: str | None = None
    ids: tuple[PartyId, ...] = ()
    organization: str | None = None
    organization_ids: tuple[PartyId, ...] = ()
    qualification: Coding | None = None  # a practitioner's profession (9060: LE lege, SP sykepleier)
    relation: Coding | None = None  # a practitioner's role to the patient (9034: Fastlege, Primærkontakt)
    telecom: tuple[str, ...] | None = None  # phone, fax or e-mail as the source writes it (``tel:...``)
    address: str | None = None  # postal address as one line (``street, postal code city``)


#: roles a :class:`Party` may have on a record (FHIR: requester, performer, resultsInterpreter, author ...)
PARTY_ROLES = frozenset(
    {
        "requester",  # who ordered the service (the ordering GP)
        "performer",  # the lab or department that performed it
        "responsible",  # the doctor responsible for the result
        "approver",  # who validated or approved the result
        "screener",  # who screened a cytology sample
        "sender",  # the organisation that sent the message
        "recipient",  # the organisation or person it was addressed to
        "copy",  # a copy recipient
        "author",  # who wrote a document or note
        "gp",  # the citizen's regular GP (fastlege)
        "other",
    }
)


class AttachmentRef(_Frozen):
    """An attachment kept in the store: its bytes are found by ``sha256`` (:class:`Attachment`)."""

    content_type: str
    size: int
    sha256: str
    description: str | None = None
    title: str | None = None

    @classmethod
    def named(cls, content_type: str, description: str | None = None) -> AttachmentRef:
        """An attachment the message names without carrying its bytes (a reference to another message)."""
        return cls(content_type=content_type, size=0, sha256=_EMPTY_SHA256, description=description)


_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class Attachment(_Frozen):
    """The bytes of an attachment a mapping found (a PDF in a KITH ``RefDoc``, an HL7 ED value).

    The worker writes it to the store once per ``sha256`` in the same transaction as the records that refer to
    it through an :class:`AttachmentRef`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    content_type: str
    data: bytes
    sha256: str

    @classmethod
    def of(cls, data: bytes, content_type: str) -> Attachment:
        return cls(content_type=content_type, data=data, sha256=hashlib.sha256(data).hexdigest())

    def ref(self, description: str | None = None, title: str | None = None) -> AttachmentRef:
        return AttachmentRef(
            content_type=self.content_type,
            size=len(self.data),
            sha256=self.sha256,
            description=description,
            title=title,
        )

    def __repr__(self) -> str:
        return f"Attachment({self.content_type}, {len(self.data)} bytes)"


class Identifier(_Frozen):
    """One identifier in a namespace. ``system`` is an OID (see :mod:`engine.ids`) or a scoped local name.

    ``flags`` records problems (``INVALID_CHECKSUM``, ``BIRTHDATE_MISMATCH`` ...) without dropping it.
    """

    system: str
    value: str
    kind: Literal["FNR", "DNR", "HNR", "FHN", "LOCAL", "OTHER"] = "LOCAL"
    flags: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.system}|{self.value}"

    @property
    def national(self) -> bool:
        return self.kind in ("FNR", "DNR", "FHN")

    def __repr__(self) -> str:
        return f"Identifier({self.kind}, {self.system}, {ids.mask(self.value)})"

    __str__ = __repr__


class Provenance(_Frozen):
    """Where a record came from. Not part of its content (it does not change the version hash)."""

    adapter: str
    envelope_id: str
    source_system: str | None = None
    source_message_id: str | None = None


class RecordBase(_Frozen):
    kind: str
    key: str = Field(min_length=1)
    subject: Identifier
    event_time: datetime
    status: RecordStatus = RecordStatus.FINAL
    provenance: Provenance
    flags: tuple[str, ...] = ()
    #: practitioners and organisations named on the record, each in a role (None: the source names none)
    parties: tuple[Party, ...] | None = None
    #: free-text comments that belong to the record (HL7 NTE, KITH Comment), each as written
    comments: tuple[str, ...] | None = None

    _exclude: ClassVar[set[str]] = {"provenance"}

    @field_validator("event_time")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("event_time must be timezone-aware")
        return v

    def content_json(self) -> bytes:
        """The content as canonical JSON (field order is the model's declaration order: deterministic)."""
        return self.__pydantic_serializer__.to_json(self, exclude=self._exclude, exclude_none=True)

    def version_hash(self) -> str:
        """Deterministic hash of the content, used to break event-time ties and to deduplicate."""
        return hashlib.sha256(self.content_json()).hexdigest()[:32]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, status={self.status.value})"

    __str__ = __repr__


class Contact(_Frozen):
    """A person to contact about the patient (next of kin, guardian: HL7 NK1): FHIR Patient.contact."""

    relationship: str | None = None
    #: the contact's role (e.g. emergency contact, guardian)
    role: str | None = None
    name: str | None = None
    telecom: tuple[str, ...] | None = None
    address: str | None = None


class Person(RecordBase):
    kind: Literal["person"] = "person"
    identifiers: tuple[Identifier, ...] = ()
    family_name: str | None = None
    given_name: str | None = None
    middle_name: str | None = None
    birth_date: date | None = None
    sex: Literal["male", "female", "other", "unknown"] | None = None
    deceased_at: datetime | None = None
    address: str | None = None
    #: the date of death when the source gives only a date
    deceased_date: date | None = None
    #: phone numbers and e-mail addresses (home first)
    telecom: tuple[str, ...] | None = None
    #: preferred language as the source writes it (e.g. ``no``, ``en``)
    language: str | None = None
    #: marital status: single, married, divorced, widowed, separated, partner, unknown
    marital_status: str | None = None
    contacts: tuple[Contact, ...] | None = None


class Encounter(RecordBase):
    kind: Literal["encounter"] = "encounter"
    encounter_class: str | None = None  # inpatient, outpatient, emergency, ...
    start: datetime | None = None
    end: datetime | None = None
    facility: str | None = None
    location: str | None = None
    admission_type: str | None = None
    discharge_disposition: str | None = None
    #: the hospital service (department specialty) the visit is under, as the source codes it
    hospital_service: str | None = None
    #: where the patient was admitted from (referral, emergency, transfer ...), as the source codes it
    admit_source: str | None = None


class Observation(RecordBase):
    """A result. Optional fields added after the first release default to None so that the content (and the
    version hash) of a record whose source does not carry them is unchanged."""

    kind: Literal["observation"] = "observation"
    code: Coding
    #: further codings of the same test (a lab's local code beside NPU/NOR), in source order
    alt_codes: tuple[Coding, ...] | None = None
    #: the coded element's original text, when the source gives one beside the code's display
    code_text: str | None = None
    value_type: str | None = None  # NM, ST, TX, CE, CWE, SN, ED, ...
    value_num: float | None = None
    comparator: Literal["<", "<=", ">", ">="] | None = None
    value_text: str | None = None
    value_code: Coding | None = None
    unit: str | None = None
    reference_range: str | None = None
    ref_low: float | None = None
    ref_high: float | None = None
    abnormal_flag: str | None = None
    effective_time: datetime | None = None
    specimen: Coding | None = None
    report_id: str | None = None
    performer: str | None = None
    #: ``>`` / ``>=`` of a one-sided range ``>10`` (ref_low), ``<`` / ``<=`` of ``<5`` (ref_high)
    ref_low_comparator: Literal[">", ">="] | None = None
    ref_high_comparator: Literal["<", "<="] | None = None
    #: a date-only value (HL7 DT, KITH DT) or a date-only effective time: a date, never midnight
    value_date: date | None = None
    effective_date: date | None = None
    #: when the result was issued, analysed, validated/approved (the source's own times)
    issued: datetime | None = None
    analysed_at: datetime | None = None
    approved_at: datetime | None = None
    #: an attachment value (HL7 ED, a KITH result's document) kept in the store
    value_attachment: AttachmentRef | None = None
    #: the keys of the report, requisition and specimen records this result belongs to
    report_key: str | None = None
    requisition_key: str | None = None
    specimen_key: str | None = None
    #: keys of results this one is derived from (a microbiology isolate -> its culture; a quantity -> its isolate)
    derived_from: tuple[str, ...] | None = None
    #: codes of the panel (order group) the result was requested in
    panel: Coding | None = None


class Report(RecordBase):
    """A report (FHIR DiagnosticReport): one lab's or department's answer to a requisition, grouping results.

    ``result_keys`` are the keys of its :class:`Observation` records; its ``status`` is the report's own.
    """

    kind: Literal["report"] = "report"
    code: Coding | None = None
    alt_codes: tuple[Coding, ...] | None = None
    code_text: str | None = None
    category: str | None = None  # lab, microbiology, pathology, radiology, ...
    report_id: str | None = None  # the filler's (lab's) report id
    issued: datetime | None = None
    effective_time: datetime | None = None
    effective_date: date | None = None
    conclusion: str | None = None
    conclusion_codes: tuple[Coding, ...] | None = None
    result_keys: tuple[str, ...] | None = None
    requisition_key: str | None = None
    specimen_keys: tuple[str, ...] | None = None
    attachments: tuple[AttachmentRef, ...] | None = None


class Requisition(RecordBase):
    """A requisition (FHIR ServiceRequest): what was ordered, by whom, how urgently and why."""

    kind: Literal["requisition"] = "requisition"
    placer_id: str | None = None  # the requester's order id (HL7 ORC-2/OBR-2, KITH ReqId)
    filler_id: str | None = None  # the performer's order id (HL7 ORC-3/OBR-3)
    codes: tuple[Coding, ...] | None = None  # the services requested (panel, investigations)
    code_text: str | None = None
    priority: str | None = None  # FHIR request-priority: routine, urgent, asap, stat
    priority_code: Coding | None = None  # the source's own priority code (KITH ``OHJELP``, HL7 ``S``)
    requested_at: datetime | None = None
    requested_date: date | None = None  # the requested time when the source gives only a date
    reason: str | None = None
    reason_codes: tuple[Coding, ...] | None = None


class Specimen(RecordBase):
    """A specimen (FHIR Specimen): the sample a result was measured on."""

    kind: Literal["specimen"] = "specimen"
    sample_id: str | None = None  # the lab's accession or sample number
    specimen_type: Coding | None = None
    collected_at: datetime | None = None
    collected_date: date | None = None
    received_at: datetime | None = None
    body_site: Coding | None = None
    body_site_text: str | None = None


class Condition(RecordBase):
    kind: Literal["condition"] = "condition"
    code: Coding
    role: Literal["main", "secondary", "other"] | None = None
    onset: datetime | None = None
    encounter_key: str | None = None
    text: str | None = None
    onset_date: date | None = None
    alt_codes: tuple[Coding, ...] | None = None


class Document(RecordBase):
    kind: Literal["document"] = "document"
    doc_type: Coding
    title: str | None = None
    text: str | None = None
    mime_type: str | None = None
    author: str | None = None
    conversation_ref: str | None = None
    parent_ref: str | None = None
    #: attachments kept in the store (their bytes by sha256); an attachment the message only names (no
    #: bytes inline) has ``size`` 0 and the sha256 of nothing, with its content type and description
    attachments: tuple[AttachmentRef, ...] = ()
    #: topic of a note (dialogue ``Tema``) and its codes (``TemaKodet``)
    topic: str | None = None
    topic_codes: tuple[Coding, ...] | None = None
    #: the document's own date when the source gives only a date
    document_date: date | None = None


class Referral(RecordBase):
    kind: Literal["referral"] = "referral"
    reason: str | None = None
    codes: tuple[Coding, ...] = ()
    priority: str | None = None
    requester: str | None = None
    recipient: str | None = None
    service: Coding | None = None
    #: documents sent with the referral (MsgHead attachments), kept in the store
    attachments: tuple[AttachmentRef, ...] | None = None


class CareEvent(RecordBase):
    kind: Literal["care_event"] = "care_event"
    event_code: Coding  # admitted, ready_for_discharge, discharged, deceased, ...
    description: str | None = None
    facility: str | None = None
    occurred_at: datetime | None = None
    #: when the source gives only the date of the event
    occurred_date: date | None = None


class Medication(RecordBase):
    kind: Literal["medication"] = "medication"
    code: Coding | None = None  # ATC
    name: str | None = None
    dosage: str | None = None
    med_status: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    #: start and end when the source gives only dates
    start_date: date | None = None
    end_date: date | None = None


class Allergy(RecordBase):
    """An allergy or intolerance (HL7 AL1): FHIR AllergyIntolerance."""

    kind: Literal["allergy"] = "allergy"
    code: Coding  # the allergen
    category: Literal["medication", "food", "environment", "biologic"] | None = None
    severity: Literal["mild", "moderate", "severe"] | None = None
    reaction: str | None = None
    identified: datetime | None = None
    identified_date: date | None = None


class Procedure(RecordBase):
    """A procedure performed on the patient (HL7 PR1): FHIR Procedure."""

    kind: Literal["procedure"] = "procedure"
    code: Coding
    alt_codes: tuple[Coding, ...] | None = None
    text: str | None = None
    performed: datetime | None = None
    performed_date: date | None = None
    encounter_key: str | None = None


Record = Annotated[
    Person
    | Encounter
    | Observation
    | Report
    | Requisition
    | Specimen
    | Condition
    | Document
    | Referral
    | CareEvent
    | Medication
    | Allergy
    | Procedure,
    Field(discriminator="kind"),
]
RECORD_TYPES: dict[str, type[RecordBase]] = {
    t.model_fields["kind"].default: t
    for t in (
        Person,
        Encounter,
        Observation,
        Report,
        Requisition,
        Specimen,
        Condition,
        Document,
        Referral,
        CareEvent,
        Medication,
        Allergy,
        Procedure,
    )
}


class IdentityLink(_Frozen):
    """An assertion that two identifiers belong to the same citizen (an edge of the identity graph)."""

    a: Identifier
    b: Identifier
    reason: Literal["same-message", "merge", "replaces", "link"] = "same-message"

    def __repr__(self) -> str:
        return f"IdentityLink({self.reason}, {self.a!r}, {self.b!r})"


class MappingResult(_Frozen):
    """What a mapping returns for one envelope. ``warnings`` are codes (no values) for AppRec status 3."""

    records: tuple[Any, ...] = ()
    links: tuple[IdentityLink, ...] = ()
    #: bytes of attachments the records refer to (:class:`AttachmentRef`), stored once per sha256
    attachments: tuple[Attachment, ...] = ()
    warnings: tuple[str, ...] = ()
    message_type: str | None = None
    source_message_id: str | None = None


class MapContext(_Frozen):
    """Everything a mapping may know besides the bytes. Pure input: no clock, no I/O."""

    envelope_id: str
    adapter: str
    source_system: str | None = None
    received_at: datetime
    charset: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    def provenance(self, source_message_id: str | None = None) -> Provenance:
        return Provenance(
            adapter=self.adapter,
            envelope_id=self.envelope_id,
            source_system=self.source_system,
            source_message_id=source_message_id,
        )


def link_all(
    identifiers: list[Identifier] | tuple[Identifier, ...], reason: str = "same-message"
) -> tuple[IdentityLink, ...]:
    """Edges that connect every identifier to the first (a star is enough for a component)."""
    uniq = list(dict.fromkeys(identifiers))
    return tuple(IdentityLink(a=uniq[0], b=o, reason=reason) for o in uniq[1:])


def national_identifier(value: str, *, declared: str | None = None, hnr_scope: str | None = None) -> Identifier:
    """Build an Identifier for a declared national number; invalid numbers stay, flagged, as local ids.

    ``declared`` is what the sender said (FNR/DNR/HNR/FHN or None); ``hnr_scope`` scopes an
    H-number (or an invalid number) to the organisation or source that issued it.
    """
    value = value.strip()
    scope = hnr_scope or "unknown"
    kind = ids.classify(value)
    if declared == "FHN" and ids.is_mod11_valid(value):
        return Identifier(system=ids.OID_FHN, value=value, kind="FHN")
    if kind is ids.IdKind.FNR:
        return Identifier(
            system=ids.OID_FNR,
            value=value,
            kind="FNR",
            flags=("DECLARED_" + declared,) if declared and declared not in ("FNR",) else (),
        )
    if kind is ids.IdKind.DNR:
        return Identifier(
            system=ids.OID_DNR,
            value=value,
            kind="DNR",
            flags=("DECLARED_" + declared,) if declared and declared not in ("DNR",) else (),
        )
    if kind is ids.IdKind.HNR or declared == "HNR":
        flags = () if kind is ids.IdKind.HNR else ("INVALID_NUMBER",)
        return Identifier(system=ids.OID_HNR_PREFIX + scope, value=value, kind="HNR", flags=flags)
    return Identifier(system=ids.OID_LOCAL_PREFIX + scope, value=value, kind="LOCAL", flags=("INVALID_NUMBER",))
