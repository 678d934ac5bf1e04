"""Fixture pairs: an input file and the expected canonical JSON beside it, for every mapping.

A mapping's pairs live in ``tests/fixtures/<mapping>/`` (the registry name): every file there but
``*.expected.json``, ``pairs.yaml`` and hidden files is an input, and ``<stem>.expected.json`` is what it
must become: the :class:`engine.model.MappingResult` as JSON, or ``{"rejected": "<CODE>"}`` for an input
the mapping refuses with that :class:`engine.errors.PermanentError` code. An optional ``pairs.yaml``
says how the directory's inputs are mapped::

    context:                     # the MapContext (defaults: DEFAULT_CONTEXT)
      adapter: hl7-test
      received_at: 2026-04-01T12:00:00+00:00
    inputs:                      # inputs kept elsewhere (paths relative to the repository root)
      vedtak_20260115:
        input: deploy/csv/samples/vedtak_20260115.csv
        adapter: deploy/csv/vedtak.yaml   # one adapter's config: its name, source_system, mapping_options()

Regenerate after a deliberate mapping change with ``ENJOURNAL_REGEN=1 pytest tests/unit`` and review the
diff by eye; without the variable a missing or different expectation fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import yaml

from engine.config import parse_config
from engine.errors import PermanentError
from engine.model import MapContext, MappingResult
from tests.conftest import FIXTURES, REPO

REGEN_VARIABLE = "ENJOURNAL_REGEN"
EXPECTED_SUFFIX = ".expected.json"
PAIRS_FILE = "pairs.yaml"
DEFAULT_CONTEXT: dict[str, Any] = {
    "envelope_id": "env-test",
    "adapter": "test",
    "received_at": datetime(2026, 1, 1, tzinfo=UTC),
}

MapFn = Callable[[bytes, MapContext], MappingResult]


@dataclass(frozen=True)
class Pair:
    """One input and its expected outcome under ``context``."""

    mapping: str
    name: str  # the input's stem: ``<name>.expected.json``
    input: Path
    expected: Path
    context: MapContext
    #: the adapter config the input is mapped with (``{name: {type: ...}}``), when ``pairs.yaml`` names one
    adapter_config: dict[str, Any] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.mapping}/{self.name}"

    def raw(self) -> bytes:
        return self.input.read_bytes()

    def expectation(self) -> dict[str, Any]:
        """The parsed expected JSON (a failure naming the regeneration flag when there is none)."""
        if not self.expected.is_file():
            raise AssertionError(
                f"{self}: no {self.expected.name}; run with {REGEN_VARIABLE}=1 to write it and review it"
            )
        data: dict[str, Any] = orjson.loads(self.expected.read_bytes())
        return data

    @property
    def rejected_code(self) -> str | None:
        """The PermanentError code the input must be refused with; None for an input that maps."""
        code = self.expectation().get("rejected")
        return str(code) if code is not None else None


def pair_dir(mapping: str) -> Path:
    return FIXTURES / mapping


def pairs(mapping: str) -> list[Pair]:
    """Every pair of ``mapping``, sorted by name (an empty list when it has no fixture directory)."""
    return list(_pairs(mapping))


@cache
def _pairs(mapping: str) -> tuple[Pair, ...]:
    directory = pair_dir(mapping)
    if not directory.is_dir():
        return ()
    spec = _spec(directory)
    context = {**DEFAULT_CONTEXT, **(spec.get("context") or {})}
    found = {
        p.stem: Pair(mapping, p.stem, p, directory / (p.stem + EXPECTED_SUFFIX), MapContext(**context))
        for p in directory.iterdir()
        if p.is_file() and _is_input(p.name)
    }
    for name, entry in (spec.get("inputs") or {}).items():
        found[name] = _listed(mapping, directory, name, entry, context)
    return tuple(found[name] for name in sorted(found))


def mapped(mapping: str) -> list[Pair]:
    """The pairs whose input maps (the good samples)."""
    return [p for p in pairs(mapping) if p.rejected_code is None]


def orphans(mapping: str) -> list[Path]:
    """Expected files without an input (an input renamed or removed)."""
    names = {p.name for p in pairs(mapping)}
    directory = pair_dir(mapping)
    return sorted(p for p in directory.glob("*" + EXPECTED_SUFFIX) if p.name[: -len(EXPECTED_SUFFIX)] not in names)


def render(result: MappingResult) -> dict[str, Any]:
    """A result as the JSON stored in an expected file (fields that are None left out, so a field the model
    gains later does not change every file)."""
    data: dict[str, Any] = result.model_dump(mode="json", exclude_none=True)
    return data


def outcome(pair: Pair, map_fn: MapFn) -> dict[str, Any]:
    """What ``map_fn`` makes of the pair's input: the rendered result or ``{"rejected": code}``."""
    try:
        return render(map_fn(pair.raw(), pair.context))
    except PermanentError as exc:
        return {"rejected": exc.code}


def dumps(data: dict[str, Any]) -> bytes:
    """The bytes of an expected file: indented JSON with sorted keys and a final newline."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def check(pair: Pair, map_fn: MapFn) -> None:
    """Map the pair's input and compare with its expected file (written first under ``ENJOURNAL_REGEN=1``)."""
    got = outcome(pair, map_fn)
    if os.environ.get(REGEN_VARIABLE) == "1":
        pair.expected.write_bytes(dumps(got))
    want = pair.expectation()
    assert orjson.loads(dumps(got)) == want, f"{pair}: the mapping no longer gives {pair.expected.name}"


def _is_input(name: str) -> bool:
    return not (name.startswith(".") or name.endswith(EXPECTED_SUFFIX) or name == PAIRS_FILE)


def _spec(directory: Path) -> dict[str, Any]:
    path = directory / PAIRS_FILE
    if not path.is_file():
        return {}
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data


def _listed(mapping: str, directory: Path, name: str, entry: dict[str, Any], context: dict[str, Any]) -> Pair:
    """A pair whose input lives elsewhere, mapped with the context its adapter config gives."""
    adapter_config = None
    ctx = dict(context)
    if entry.get("adapter"):
        adapter_config = _absolute(yaml.safe_load((REPO / entry["adapter"]).read_text(encoding="utf-8")))
        ctx.update(_adapter_context(adapter_config))
    return Pair(
        mapping,
        name,
        REPO / entry["input"],
        directory / (name + EXPECTED_SUFFIX),
        MapContext(**ctx),
        adapter_config,
    )


def _adapter_context(adapter_config: dict[str, Any]) -> dict[str, Any]:
    """``adapter``, ``source_system`` and ``options`` as the worker gives them to this adapter's envelopes."""
    [name] = adapter_config
    settings = parse_config({"adapters": adapter_config}).adapters[name]
    options = settings.mapping_options() if hasattr(settings, "mapping_options") else {}
    return {"adapter": name, "source_system": getattr(settings, "source_system", None), "options": options}


def _absolute(value: Any) -> Any:
    """Relative paths in an adapter config that name a file of the repository, made absolute (the engine
    reads them relative to its working directory; the tests may run from anywhere)."""
    if isinstance(value, dict):
        return {k: _absolute(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_absolute(v) for v in value]
    if isinstance(value, str) and value and not value.startswith("/") and (REPO / value).is_file():
        return str(REPO / value)
    return value
