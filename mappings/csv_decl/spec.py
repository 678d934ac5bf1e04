"""The declarative CSV spec: pydantic models of what ops write in the YAML config."""

from __future__ import annotations

import unicodedata
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.model import (
    RECORD_TYPES,
)

OSLO = ZoneInfo("Europe/Oslo")
CANDIDATE_DELIMITERS = (";", ",", "\t")
DEFAULT_FORMATS = ("dd.mm.yyyy HH:MM:SS", "dd.mm.yyyy HH:MM", "dd.mm.yyyy", "iso")
Kind = Literal["person", "observation", "care_event", "condition", "encounter", "document", "medication", "referral"]
Scalar = str | int | float | bool

CODING_FIELDS = frozenset({"code", "event_code", "doc_type", "value_code", "specimen", "service", "codes"})
DATETIME_FIELDS = frozenset({"start", "end", "onset", "occurred_at", "effective_time", "deceased_at"})
DATE_FIELDS = frozenset({"birth_date"})
FLOAT_FIELDS = frozenset({"value_num", "ref_low", "ref_high"})
RESERVED = frozenset({"kind", "key", "subject", "event_time", "provenance", "identifiers", "flags"})
PERSON_FIELDS = frozenset({"family_name", "given_name", "birth_date", "sex", "deceased_at", "address"})
_KIND_RANK = {"FNR": 0, "DNR": 1, "FHN": 2, "HNR": 3, "LOCAL": 4, "OTHER": 5}


def normalise_column(name: str) -> str:
    """Header/column name as compared: BOM and outer spaces stripped, NFC, case folded, inner spaces -> ``_``."""
    return "_".join(unicodedata.normalize("NFC", name.replace("\ufeff", "")).strip().casefold().split())


# --------------------------------------------------------------------------- spec models


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeEntry(_Spec):
    code: str
    display: str | None = None


class CodeTable(_Spec):
    """Local code -> standard code. ``path`` (CSV ``local;code;display`` or YAML) is loaded by the adapter."""

    system: str | None = None  # system of the translated codes (OID)
    local_system: str | None = None  # system kept on codes the table does not know
    strict: bool = False  # unknown code -> row rejected (UNKNOWN_CODE) instead of kept + warned
    path: str | None = None
    codes: dict[str, CodeEntry] = Field(default_factory=dict)

    @field_validator("codes", mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): ({"code": str(e)} if isinstance(e, (str, int)) else e) for k, e in v.items()}
        return v


class FieldSpec(_Spec):
    """Where a canonical field comes from: a ``column`` (optionally through a code ``table``) or a ``const``."""

    column: str | None = None
    const: Scalar | None = None
    table: str | None = None
    system: str | None = None  # Coding.system for coded fields without a table
    display: str | None = None  # column with the Coding's display text
    formats: tuple[str, ...] | None = None  # date formats for this field

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if (self.column is None) == (self.const is None):
            raise ValueError("give exactly one of 'column' or 'const'")
        return self


class TimeSpec(_Spec):
    column: str
    formats: tuple[str, ...] = DEFAULT_FORMATS


class SubjectSpec(_Spec):
    """The patient: a national number column (FNR/DNR; invalid ones kept, flagged) and/or a local id column."""

    national: str | None = None
    local: str | None = None
    scope: str = Field(min_length=1)  # issuer of local ids (and of invalid national numbers)

    @model_validator(mode="after")
    def _some(self) -> SubjectSpec:
        if not (self.national or self.local):
            raise ValueError("subject needs a 'national' and/or a 'local' column")
        return self


class PersonSpec(_Spec):
    """Also emit a Person per row (demographics of the subject)."""

    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    event_time: TimeSpec | None = None

    @field_validator("fields", mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        return _shorthand_fields(v)

    @field_validator("fields")
    @classmethod
    def _known(cls, v: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        bad = sorted(set(v) - PERSON_FIELDS)
        if bad:
            raise ValueError(f"unknown person fields {bad}; allowed {sorted(PERSON_FIELDS)}")
        return v


def _shorthand_fields(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: ({"column": e} if isinstance(e, str) else e) for k, e in v.items()}
    return v


class CsvSpec(_Spec):
    kind: Kind
    source: str | None = None  # key prefix; default: the adapter's source system, else its name
    key: tuple[str, ...] = Field(min_length=1)
    subject: SubjectSpec
    event_time: TimeSpec
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    constants: dict[str, Scalar] = Field(default_factory=dict)
    person: PersonSpec | None = None
    tables: dict[str, CodeTable] = Field(default_factory=dict)
    required: tuple[str, ...] = ()
    decimal_comma: bool = False
    delimiter: str | None = None  # set by the adapter when the source delimiter is configured

    @field_validator("event_time", mode="before")
    @classmethod
    def _time_short(cls, v: Any) -> Any:
        return {"column": v} if isinstance(v, str) else v

    @field_validator("fields", mode="before")
    @classmethod
    def _fields_short(cls, v: Any) -> Any:
        return _shorthand_fields(v)

    @model_validator(mode="after")
    def _coherent(self) -> CsvSpec:
        model = RECORD_TYPES[self.kind]
        mapped = {**self.fields, **{k: FieldSpec(const=c) for k, c in self.constants.items()}}
        for name, fs in mapped.items():
            if name in RESERVED or name not in model.model_fields:
                raise ValueError(f"field {name!r} cannot be mapped for kind {self.kind!r}")
            if fs.table and fs.table not in self.tables:
                raise ValueError(f"field {name!r} uses unknown table {fs.table!r}")
        for f in self.person.fields.values() if self.person else ():
            if f.table and f.table not in self.tables:
                raise ValueError(f"a person field uses unknown table {f.table!r}")
        needed = [n for n, fi in model.model_fields.items() if fi.is_required() and n not in RESERVED]
        missing = [n for n in needed if n not in mapped]
        if missing:
            raise ValueError(f"kind {self.kind!r} needs fields {missing}")
        return self

    def all_fields(self) -> dict[str, FieldSpec]:
        return {**{k: FieldSpec(const=c) for k, c in self.constants.items()}, **self.fields}

    def columns(self) -> list[str]:
        """Every column the spec reads (normalised): the header must have them all."""
        cols = [*self.key, self.event_time.column, *self.required]
        cols += [c for c in (self.subject.national, self.subject.local) if c]
        specs = list(self.fields.values()) + list(self.person.fields.values() if self.person else ())
        if self.person and self.person.event_time:
            cols.append(self.person.event_time.column)
        for f in specs:
            cols += [c for c in (f.column, f.display) if c]
        return list(dict.fromkeys(normalise_column(c) for c in cols))
