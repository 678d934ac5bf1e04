"""A compiled spec: pure row checks (shared with the adapter) and row -> canonical record."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from engine import ids
from engine.errors import ValidationError
from engine.model import (
    RECORD_TYPES,
    Coding,
    Identifier,
    IdentityLink,
    Person,
    Provenance,
    link_all,
    national_identifier,
)
from mappings.csv_decl.spec import (
    _KIND_RANK,
    CODING_FIELDS,
    DATE_FIELDS,
    DATETIME_FIELDS,
    FLOAT_FIELDS,
    CodeEntry,
    CodeTable,
    CsvSpec,
    FieldSpec,
    TimeSpec,
    normalise_column,
)
from mappings.csv_decl.values import RowProblem, _RowFail, key_part, make_number_parser, make_time_parser

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
        self.table_cols = [
            (self._i(f.column), normalise_column(f.column), spec.tables[f.table])
            for f in spec.fields.values()
            if f.column and f.table and not spec.tables[f.table].strict
        ]

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
            return (
                (lambda row: p(row[i]).date() if row[i] else None)
                if name in DATE_FIELDS
                else (lambda row: p(row[i]) if row[i] else None)
            )
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
        if any(row[self.width :]):
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
            if not (
                (self.nat_idx is not None and row[self.nat_idx]) or (self.loc_idx is not None and row[self.loc_idx])
            ):
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
        return Person(
            key=key,
            subject=idents[0],
            identifiers=tuple(idents),
            event_time=event_time,
            provenance=prov,
            **{k: v for k, v in data.items() if v is not None},
        )


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
        c = Coding(
            system=(table.system if table else None) or fs.system,
            code=e.code if e else str(v),
            display=e.display if e else None,
        )
        return (c,) if name == "codes" else c
    try:
        if name in DATETIME_FIELDS or name in DATE_FIELDS:
            dt = make_time_parser(fs.formats or spec.event_time.formats, name)(str(v))
            return dt.date() if name in DATE_FIELDS else dt
        return float(v) if name in FLOAT_FIELDS else v  # type: ignore[arg-type]
    except (_RowFail, ValueError):
        raise ValidationError(f"constant for field {name!r} does not parse", code="SPEC_INVALID") from None
