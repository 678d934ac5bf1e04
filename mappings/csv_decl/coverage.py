"""Coverage support of the declarative CSV mapping (:mod:`engine.coverage`): the leaves of a chunk and
what its spec declares.

Leaves: every non-empty cell of every data row, at its column name (as the spec names columns,
:func:`mappings.csv_decl.spec.normalise_column`). The columns the spec reads (key, subject, event time,
fields, person fields) are MAPPED: the mapping parses their dates and numbers and translates their
codes. A column the spec does not read counts only where its value reaches a record (otherwise it is
unmapped: the spec drops it). Nothing is ignored by default.
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.coverage import Declarations
from engine.model import MapContext
from mappings.csv_decl import _decode, compile_spec, read_chunk
from mappings.csv_decl.spec import normalise_column

__all__ = ["declarations", "leaves"]


def declarations(ctx: MapContext) -> Declarations:
    """Every column the spec in ``ctx.options`` reads, as MAPPED."""
    spec = compile_spec(ctx.options).spec
    return Declarations(mapped=dict.fromkeys(spec.columns(), "read by the spec"))


def leaves(raw: bytes, ctx: MapContext) -> Iterator[tuple[str, str]]:
    """Every non-empty (column, cell) of the chunk ``raw``."""
    spec = compile_spec(ctx.options).spec
    header, rows = read_chunk(_decode(raw, ctx.charset), spec.delimiter)
    names = [normalise_column(h) for h in header]
    for row in rows:
        for name, cell in zip(names, row, strict=False):
            if cell.strip():
                yield name, cell
