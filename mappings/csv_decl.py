"""Declarative CSV mapping: one row of a tabular export -> one canonical record (+ Person, links).

Format: a chunk of a delimited text export (header line + rows) as the CSV adapter publishes it:
UTF-8, the delimiter of the source file (given in ``ctx.options["delimiter"]`` or read from the
header line, which the adapter writes fully quoted). The spec (``ctx.options``, see :class:`CsvSpec`)
says where each field comes from::

    kind: care_event                 # person, observation, care_event, condition, encounter, ...
    source: kommune-x.vedtak         # key prefix: record key = source | kind | key column values
    key: [vedtak_id]
    subject: {national: fnr, local: klient_id, scope: kommune-x}
    event_time: {column: vedtaksdato, formats: [dd.mm.yyyy]}
    fields:
      event_code: {column: tjeneste, table: tjenester}   # Coding via a code table
      description: tjeneste_tekst                         # plain column
      facility: {const: "Hjemmetjenesten"}                # constant
    tables: {tjenester: {system: "2.16.578.1.12.4.1.1.9151", codes: {HJSP: {code: "1"}}}}
    required: [tjeneste]
    decimal_comma: true

Row checks (:meth:`Plan.check`) are pure and shared with the adapter, which rejects a row before
publishing it (reason codes ``MISSING_VALUE``, ``MISSING_IDENTIFIER``, ``BAD_DATE``, ``BAD_NUMBER``,
``UNKNOWN_CODE``, ``COLUMN_COUNT``); they carry the row and column, never the value.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from engine import ids
from engine.errors import ParseError, ValidationError
from engine.model import (
    RECORD_TYPES,
    Coding,
    Identifier,
    IdentityLink,
    MapContext,
    MappingResult,
    Person,
    Provenance,
    link_all,
    national_identifier,
)

OSLO = ZoneInfo("Europe/Oslo")
CANDIDATE_DELIMITERS = (";", ",", "\t")
DEFAULT_FORMATS = ("dd.mm.yyyy HH:MM:SS", "dd.mm.yyyy HH:MM", "dd.mm.yyyy", "iso")
Kind = Literal["person", "observation", "care_event", "condition", "encounter", "document", "medication",
               "referral"]
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
        for f in (self.person.fields.values() if self.person else ()):
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


# --------------------------------------------------------------------------- value parsing


class RowProblem(NamedTuple):
    """Why a row is rejected: a stable code and the (normalised) column name. Never the value."""

    code: str
    column: str

    def reason(self, row: int) -> str:
        return f"{self.code}: row {row} column {self.column}"


class _RowFail(Exception):
    def __init__(self, code: str, column: str) -> None:
        super().__init__(code)
        self.problem = RowProblem(code, column)


def _fmt_parser(fmt: str) -> Callable[[str], datetime | None]:
    if fmt == "iso":
        return lambda s: datetime.fromisoformat(s)
    if "%" in fmt:
        return lambda s: datetime.strptime(s, fmt)
    fixed = {"dd.mm.yyyy": 10, "dd.mm.yyyy HH:MM": 16, "dd.mm.yyyy HH:MM:SS": 19}
    if fmt not in fixed:
        raise ValueError(f"unknown date format {fmt!r}")
    n = fixed[fmt]

    def parse(s: str) -> datetime | None:
        if len(s) != n or s[2] != "." or s[5] != ".":
            return None
        hh, mi, ss = (int(s[11:13]), int(s[14:16]), int(s[17:19]) if n == 19 else 0) if n > 10 else (0, 0, 0)
        return datetime(int(s[6:10]), int(s[3:5]), int(s[0:2]), hh, mi, ss)

    return parse


def make_time_parser(formats: tuple[str, ...], column: str) -> Callable[[str], datetime]:
    """A parser trying ``formats`` in order; naive results are Europe/Oslo. Raises BAD_DATE.

    Exports repeat the same dates a lot, so parsed values are memoised (bounded).
    """
    parsers = [_fmt_parser(f) for f in formats]
    cache: dict[str, datetime] = {}

    def parse(s: str) -> datetime:
        dt = cache.get(s)
        if dt is not None:
            return dt
        for p in parsers:
            try:
                dt = p(s)
            except ValueError:
                continue
            if dt is not None:
                dt = dt if dt.tzinfo else dt.replace(tzinfo=OSLO)
                if len(cache) >= 8192:
                    cache.clear()
                cache[s] = dt
                return dt
        raise _RowFail("BAD_DATE", column)

    return parse


def make_number_parser(decimal_comma: bool, column: str) -> Callable[[str], float]:
    """``12,5`` (decimal comma) or ``12.5``; spaces (also no-break) as thousands separators. Raises BAD_NUMBER."""

    def parse(s: str) -> float:
        try:
            return float(s.replace(",", ".") if decimal_comma else s)
        except ValueError:
            pass
        t = s.replace(" ", "").replace("\xa0", "").replace("\u202f", "")
        try:
            return float(t.replace(",", ".") if decimal_comma else t)
        except ValueError:
            raise _RowFail("BAD_NUMBER", column) from None

    return parse


def key_part(value: str) -> str:
    """A key component; a national number becomes a stable token so keys carry no identity numbers."""
    if len(value) == 11 and value.isdigit() and ids.is_mod11_valid(value):
        return "h:" + hashlib.sha256(value.encode()).hexdigest()[:20]
    return value


# --------------------------------------------------------------------------- compiled plan

Getter = Callable[[list[str]], Any]


class Plan:
    """A spec bound to one header: column indexes resolved, converters built once."""

    def __init__(self, spec: CsvSpec, header: list[str], source: str) -> None:
        self.spec, self.source, self.width = spec, source, len(header)
        self.index = {normalise_column(h): i for i, h in enumerate(header)}
        missing = [c for c in spec.columns() if c not in self.index]
        if missing:
            raise ValidationError(f"column {missing[0]!r} missing in header", code="MISSING_COLUMN")
        self.model = RECORD_TYPES[spec.kind]
        self.key_idx = [self._i(c) for c in spec.key]
        self.nat_idx = self._i(spec.subject.national) if spec.subject.national else None
        self.loc_idx = self._i(spec.subject.local) if spec.subject.local else None
        self.id_column = normalise_column(spec.subject.national or spec.subject.local or "")
        self.time_idx, self.time_parse = self._time(spec.event_time)
        self.getters = {n: self._getter(n, f) for n, f in spec.all_fields().items()}
        self.person_getters = {n: self._getter(n, f) for n, f in (spec.person.fields.items() if spec.person else ())}
        self.person_time = self._time(spec.person.event_time) if spec.person and spec.person.event_time else None
        self.checks = self._checks()
        self._ids: dict[Any, Identifier] = {}
        self.table_cols = [(self._i(f.column), normalise_column(f.column), spec.tables[f.table])
                           for f in spec.fields.values() if f.column and f.table and not spec.tables[f.table].strict]

    def _i(self, column: str) -> int:
        return self.index[normalise_column(column)]

    def _time(self, ts: TimeSpec) -> tuple[int, Callable[[str], datetime]]:
        return self._i(ts.column), make_time_parser(ts.formats, normalise_column(ts.column))

    def _getter(self, name: str, fs: FieldSpec) -> Getter:
        if fs.column is None:
            const = _convert_const(name, fs, self.spec)
            return lambda row: const
        i, col = self._i(fs.column), normalise_column(fs.column)
        if name in DATETIME_FIELDS or name in DATE_FIELDS:
            p = make_time_parser(fs.formats or self.spec.event_time.formats, col)
            return (lambda row: p(row[i]).date() if row[i] else None) if name in DATE_FIELDS else (
                lambda row: p(row[i]) if row[i] else None)
        if name in FLOAT_FIELDS:
            n = make_number_parser(self.spec.decimal_comma, col)
            return lambda row: n(row[i]) if row[i] else None
        if name in CODING_FIELDS:
            return self._coding_getter(name, fs, i, col)
        if fs.table:
            table = self.spec.tables[fs.table]
            return lambda row: _lookup(table, row[i], col).code if row[i] else None
        return lambda row: row[i] or None

    def _coding_getter(self, name: str, fs: FieldSpec, i: int, col: str) -> Getter:
        table = self.spec.tables[fs.table] if fs.table else None
        di = self._i(fs.display) if fs.display else None
        system = (table.system if table else None) or fs.system

        def get(row: list[str]) -> Any:
            v = row[i]
            if not v:
                return None
            display = row[di] or None if di is not None else None
            return _memo(cache, (v, display), lambda: make(v, display))

        def make(v: str, display: str | None) -> Any:
            if table is None:
                c = Coding(system=system, code=v, display=display)
            else:
                e = table.codes.get(v) or _lookup(table, v, col)
                system_ = system if v in table.codes else table.local_system
                c = Coding(system=system_, code=e.code, display=e.display or display)
            return (c,) if name == "codes" else c

        cache: dict[Any, Any] = {}
        return get

    def _checks(self) -> list[tuple[int, str, bool, Callable[[str], Any] | None]]:
        """(index, column, required, parser-or-None) for every value a row must have or must parse."""
        out: list[tuple[int, str, bool, Callable[[str], Any] | None]] = []
        for c in dict.fromkeys([*self.spec.key, *self.spec.required]):
            out.append((self._i(c), normalise_column(c), True, None))
        out.append((self.time_idx, normalise_column(self.spec.event_time.column), True, self.time_parse))
        fields = list(self.spec.fields.items()) + list(self.spec.person.fields.items() if self.spec.person else ())
        for name, fs in fields:
            if fs.column is None:
                continue
            col, i = normalise_column(fs.column), self._i(fs.column)
            if name in DATETIME_FIELDS or name in DATE_FIELDS:
                out.append((i, col, False, make_time_parser(fs.formats or self.spec.event_time.formats, col)))
            elif name in FLOAT_FIELDS:
                out.append((i, col, False, make_number_parser(self.spec.decimal_comma, col)))
            elif fs.table and self.spec.tables[fs.table].strict:
                out.append((i, col, False, functools.partial(_strict_lookup, self.spec.tables[fs.table], col)))
        return out

    def fit(self, row: list[str]) -> list[str]:
        """The row padded to the header's width; extra non-empty cells raise COLUMN_COUNT."""
        n = len(row)
        if n == self.width:
            return row
        if n < self.width:
            return row + [""] * (self.width - n)
        if any(row[self.width:]):
            raise _RowFail("COLUMN_COUNT", "*")
        return row[: self.width]

    def check(self, row: list[str]) -> tuple[list[str], RowProblem | None]:
        """The fitted row and the first problem that rejects it (None when the row is acceptable)."""
        try:
            row = self.fit(row)
            for i, col, required, parse in self.checks:
                v = row[i]
                if not v:
                    if required:
                        raise _RowFail("MISSING_VALUE", col)
                elif parse is not None:
                    parse(v)
            if not ((self.nat_idx is not None and row[self.nat_idx]) or (self.loc_idx is not None and row[self.loc_idx])):
                raise _RowFail("MISSING_IDENTIFIER", self.id_column)
        except _RowFail as f:
            return row, f.problem
        return row, None

    def identifiers(self, row: list[str]) -> list[Identifier]:
        """The row's identifiers, best first (FNR > DNR > FHN > HNR > local; invalid numbers last)."""
        out = []
        if self.nat_idx is not None and (v := row[self.nat_idx].replace(" ", "")):
            out.append(_memo(self._ids, ("N", v), lambda: national_identifier(v, hnr_scope=self.spec.subject.scope)))
        if self.loc_idx is not None and (v := row[self.loc_idx].strip()):
            system = ids.OID_LOCAL_PREFIX + self.spec.subject.scope
            out.append(_memo(self._ids, ("L", v), lambda: Identifier(system=system, value=v, kind="LOCAL")))
        if not out:
            raise _RowFail("MISSING_IDENTIFIER", self.id_column)
        if len(out) > 1:
            out.sort(key=lambda x: (_KIND_RANK[x.kind], bool(x.flags)))
        return out

    def map_row(self, row: list[str], prov: Provenance) -> tuple[list[Any], tuple[IdentityLink, ...], list[str]]:
        """Records, identity links and warning codes for one (checked) row; raises _RowFail."""
        idents = self.identifiers(row)
        event_time = self.time_parse(row[self.time_idx])
        data = {n: v for n, g in self.getters.items() if (v := g(row)) is not None}
        key = "|".join([self.source, self.spec.kind, *(key_part(row[i]) for i in self.key_idx)])
        if self.spec.kind == "person":
            data["identifiers"] = tuple(idents)
        records: list[Any] = [self.model(key=key, subject=idents[0], event_time=event_time, provenance=prov, **data)]
        if self.spec.person is not None and self.spec.kind != "person":
            records.append(self._person(row, idents, event_time, prov))
        warnings = [f"UNMAPPED_CODE:column {col}" for i, col, t in self.table_cols if row[i] and row[i] not in t.codes]
        return records, link_all(idents) if len(idents) > 1 else (), warnings

    def _person(self, row: list[str], idents: list[Identifier], event_time: datetime, prov: Provenance) -> Person:
        data = {n: g(row) for n, g in self.person_getters.items()}
        if self.person_time is not None and row[self.person_time[0]]:
            event_time = self.person_time[1](row[self.person_time[0]])
        key = f"{self.source}|person|{idents[0].system}|{key_part(idents[0].value)}"
        return Person(key=key, subject=idents[0], identifiers=tuple(idents), event_time=event_time, provenance=prov,
                      **{k: v for k, v in data.items() if v is not None})


def _memo(cache: dict[Any, Any], key: Any, make: Callable[[], Any]) -> Any:
    """Frozen values (identifiers, codings) repeat across rows: build each once (bounded cache)."""
    v = cache.get(key)
    if v is None:
        if len(cache) >= 65536:
            cache.clear()
        v = cache[key] = make()
    return v


def _strict_lookup(table: CodeTable, column: str, value: str) -> CodeEntry:
    return _lookup(table, value, column)


def _lookup(table: CodeTable, value: str, column: str) -> CodeEntry:
    e = table.codes.get(value)
    if e is not None:
        return e
    if table.strict:
        raise _RowFail("UNKNOWN_CODE", column)
    return CodeEntry(code=value)


def _convert_const(name: str, fs: FieldSpec, spec: CsvSpec) -> Any:
    v = fs.const
    if name in CODING_FIELDS:
        table = spec.tables.get(fs.table or "")
        e = table.codes.get(str(v)) if table else None
        c = Coding(system=(table.system if table else None) or fs.system, code=e.code if e else str(v),
                   display=e.display if e else None)
        return (c,) if name == "codes" else c
    try:
        if name in DATETIME_FIELDS or name in DATE_FIELDS:
            dt = make_time_parser(fs.formats or spec.event_time.formats, name)(str(v))
            return dt.date() if name in DATE_FIELDS else dt
        return float(v) if name in FLOAT_FIELDS else v  # type: ignore[arg-type]
    except (_RowFail, ValueError):
        raise ValidationError(f"constant for field {name!r} does not parse", code="SPEC_INVALID") from None


# --------------------------------------------------------------------------- entry point


class Compiled:
    """A validated spec and its plans per header (a header is bound once, then reused)."""

    def __init__(self, spec: CsvSpec) -> None:
        self.spec = spec
        self._plans: dict[tuple[tuple[str, ...], str], Plan] = {}

    def plan(self, header: list[str], source: str) -> Plan:
        k = (tuple(header), source)
        p = self._plans.get(k)
        if p is None:
            if len(self._plans) > 64:
                self._plans.clear()
            p = self._plans[k] = Plan(self.spec, header, source)
        return p


_CACHE: dict[str, Compiled] = {}


def parse_spec(options: dict[str, Any]) -> CsvSpec:
    """Validate a spec; errors name the fields (never the values) under the code SPEC_INVALID."""
    try:
        return CsvSpec.model_validate(options)
    except PydanticValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}"
                          for e in exc.errors(include_input=False))
        raise ValidationError(f"invalid csv spec: {where}", code="SPEC_INVALID") from None


def compile_spec(options: dict[str, Any]) -> Compiled:
    """The compiled spec for ``options`` (cached by a hash of the options)."""
    h = hashlib.sha256(orjson.dumps(options, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)).hexdigest()
    c = _CACHE.get(h)
    if c is None:
        if len(_CACHE) > 32:
            _CACHE.clear()
        c = _CACHE[h] = Compiled(parse_spec(options))
    return c


def header_delimiter(line: str) -> str:
    """The delimiter of a header line: the character after a fully quoted first name, else the commonest."""
    if line.startswith('"'):
        i = 1
        while True:
            j = line.find('"', i)
            if j < 0:
                break
            if line[j + 1: j + 2] == '"':
                i = j + 2
                continue
            nxt = line[j + 1: j + 2]
            if nxt in CANDIDATE_DELIMITERS:
                return nxt
            break
    counts = {d: line.count(d) for d in CANDIDATE_DELIMITERS}
    return max(CANDIDATE_DELIMITERS, key=lambda d: counts[d])


def read_chunk(text: str, delimiter: str | None) -> tuple[list[str], Any]:
    """Header and a row iterator of a chunk's text."""
    delim = delimiter or header_delimiter(text[: text.find("\n") if "\n" in text else len(text)])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=False)
    try:
        header = next(reader)
    except StopIteration:
        raise ParseError("empty CSV chunk", code="CSV_EMPTY") from None
    return header, reader


def _decode(raw: bytes, charset: str | None) -> str:
    """The declared charset strictly; undeclared (a file fed directly): UTF-8 (BOM or not), else cp1252."""
    for enc in ((charset,) if charset else ("utf-8-sig", "cp1252", "iso-8859-1")):
        try:
            return raw.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
    raise ParseError("chunk is not in its declared charset", code="ENCODING_ERROR")


def map_message(raw: bytes, ctx: MapContext) -> MappingResult:
    """Map every row of a CSV chunk; rows that fail become ``warnings`` codes with their chunk row."""
    compiled = compile_spec(ctx.options)
    text = _decode(raw, ctx.charset)
    header, rows = read_chunk(text, compiled.spec.delimiter)
    plan = compiled.plan(header, compiled.spec.source or ctx.source_system or ctx.adapter)
    prov = ctx.provenance()
    records: list[Any] = []
    links: dict[IdentityLink, None] = {}
    warnings: dict[str, None] = {}
    try:
        for n, row in enumerate(rows, start=1):
            if not row:
                continue
            _map_one(plan, row, n, prov, records, links, warnings)
    except csv.Error:
        raise ParseError("malformed CSV chunk", code="CSV_MALFORMED") from None
    return MappingResult(records=tuple(records), links=tuple(links), warnings=tuple(warnings),
                         message_type=f"CSV_{compiled.spec.kind.upper()}")


def _map_one(plan: Plan, row: list[str], n: int, prov: Provenance, records: list[Any],
             links: dict[IdentityLink, None], warnings: dict[str, None]) -> None:
    row, problem = plan.check(row)
    if problem is not None:
        warnings[problem.reason(n)] = None
        return
    try:
        recs, lnk, warn = plan.map_row(row, prov)
    except _RowFail as f:
        warnings[f.problem.reason(n)] = None
        return
    except ValueError:  # pydantic rejected a value (e.g. an unknown literal): code and position only
        warnings[f"INVALID_VALUE: row {n}"] = None
        return
    records.extend(recs)
    links.update(dict.fromkeys(lnk))
    warnings.update(dict.fromkeys(warn))
