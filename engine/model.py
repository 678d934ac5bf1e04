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


class Person(RecordBase):
    kind: Literal["person"] = "person"
    identifiers: tuple[Identifier, ...] = ()
    family_name: str | None = None
    given_name: str | None = None
    birth_date: date | None = None
    sex: Literal["male", "female", "other", "unknown"] | None = None
    deceased_at: datetime | None = None
    address: str | None = None


class Encounter(RecordBase):
    kind: Literal["encounter"] = "encounter"
    encounter_class: str | None = None  # inpatient, outpatient, emergency, ...
    start: datetime | None = None
    end: datetime | None = None
    facility: str | None = None
    location: str | None = None
    admission_type: str | None = None
    discharge_disposition: str | None = None


class Observation(RecordBase):
    kind: Literal["observation"] = "observation"
    code: Coding
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


class Condition(RecordBase):
    kind: Literal["condition"] = "condition"
    code: Coding
    role: Literal["main", "secondary", "other"] | None = None
    onset: datetime | None = None
    encounter_key: str | None = None
    text: str | None = None


class Document(RecordBase):
    kind: Literal["document"] = "document"
    doc_type: Coding
    title: str | None = None
    text: str | None = None
    mime_type: str | None = None
    author: str | None = None
    conversation_ref: str | None = None
    parent_ref: str | None = None
    attachments: tuple[str, ...] = ()  # mime types of attachments kept in the raw archive


class Referral(RecordBase):
    kind: Literal["referral"] = "referral"
    reason: str | None = None
    codes: tuple[Coding, ...] = ()
    priority: str | None = None
    requester: str | None = None
    recipient: str | None = None
    service: Coding | None = None


class CareEvent(RecordBase):
    kind: Literal["care_event"] = "care_event"
    event_code: Coding  # admitted, ready_for_discharge, discharged, deceased, ...
    description: str | None = None
    facility: str | None = None
    occurred_at: datetime | None = None


class Medication(RecordBase):
    kind: Literal["medication"] = "medication"
    code: Coding | None = None  # ATC
    name: str | None = None
    dosage: str | None = None
    med_status: str | None = None
    start: datetime | None = None
    end: datetime | None = None


Record = Annotated[
    Person | Encounter | Observation | Condition | Document | Referral | CareEvent | Medication,
    Field(discriminator="kind"),
]
RECORD_TYPES: dict[str, type[RecordBase]] = {
    t.model_fields["kind"].default: t
    for t in (Person, Encounter, Observation, Condition, Document, Referral, CareEvent, Medication)
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
