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
import hashlib
import io
from typing import Any

import orjson
from pydantic import ValidationError as PydanticValidationError

from engine.errors import ParseError, ValidationError
from engine.model import IdentityLink, MapContext, MappingResult, Provenance
from mappings.csv_decl.plan import Getter, Plan
from mappings.csv_decl.spec import (
    CANDIDATE_DELIMITERS,
    CODING_FIELDS,
    DATE_FIELDS,
    DATETIME_FIELDS,
    DEFAULT_FORMATS,
    FLOAT_FIELDS,
    OSLO,
    PERSON_FIELDS,
    RESERVED,
    CodeEntry,
    CodeTable,
    CsvSpec,
    FieldSpec,
    Kind,
    PersonSpec,
    Scalar,
    SubjectSpec,
    TimeSpec,
    normalise_column,
)
from mappings.csv_decl.values import RowProblem, _RowFail, key_part, make_number_parser, make_time_parser


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
        where = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors(include_input=False)
        )
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
            if line[j + 1 : j + 2] == '"':
                i = j + 2
                continue
            nxt = line[j + 1 : j + 2]
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
    for enc in (charset,) if charset else ("utf-8-sig", "cp1252", "iso-8859-1"):
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
    return MappingResult(
        records=tuple(records),
        links=tuple(links),
        warnings=tuple(warnings),
        message_type=f"CSV_{compiled.spec.kind.upper()}",
    )


def _map_one(
    plan: Plan,
    row: list[str],
    n: int,
    prov: Provenance,
    records: list[Any],
    links: dict[IdentityLink, None],
    warnings: dict[str, None],
) -> None:
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


__all__ = [
    "CANDIDATE_DELIMITERS",
    "CODING_FIELDS",
    "DATETIME_FIELDS",
    "DATE_FIELDS",
    "DEFAULT_FORMATS",
    "FLOAT_FIELDS",
    "OSLO",
    "PERSON_FIELDS",
    "RESERVED",
    "CodeEntry",
    "CodeTable",
    "Compiled",
    "CsvSpec",
    "FieldSpec",
    "Getter",
    "Kind",
    "PersonSpec",
    "Plan",
    "RowProblem",
    "Scalar",
    "SubjectSpec",
    "TimeSpec",
    "compile_spec",
    "header_delimiter",
    "key_part",
    "make_number_parser",
    "make_time_parser",
    "map_message",
    "normalise_column",
    "parse_spec",
    "read_chunk",
]
