"""Mapping registry: built-in names -> dotted paths, resolved lazily, "did you mean" on a typo.

A mapping entry point has the signature ``map_message(raw: bytes, ctx: MapContext) -> MappingResult``:
it parses the bytes and maps them, purely (no I/O, no clock, no logging of content). It raises
:class:`engine.errors.PermanentError` subclasses with stable codes for bad input.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Protocol

from engine.errors import ConfigError
from engine.model import MapContext, MappingResult


class MapFn(Protocol):
    def __call__(self, raw: bytes, ctx: MapContext, /) -> MappingResult: ...


BUILTIN: dict[str, str] = {
    "hl7v2": "mappings.hl7v2:map_message",
    "kith": "mappings.kith:map_message",
    "csv": "mappings.csv_decl:map_message",
}


def resolve(name: str) -> Callable[[bytes, MapContext], MappingResult]:
    """The mapping function for ``name`` (a built-in name or ``module:function``)."""
    target = BUILTIN.get(name, name if ":" in name else None)
    if target is None:
        close = difflib.get_close_matches(name, BUILTIN, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown mapping {name!r}{hint}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
