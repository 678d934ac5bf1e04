"""Every config example in a module docstring under engine/, adapters/ and mappings/ validates.

The modules are found by walking the folders, so a module that moves or a new one is covered without
editing this test. A literal block (a paragraph ending in ``::`` followed by an indented block) is a
config example when

* its paragraph introduces a config or an example (``Config::``, ``Example::``, ``Config example
  (under adapters:)::``, ``Example adapter config::``): it must then be YAML and one of the shapes
  below, or the test fails;
* or, whatever its paragraph says, it is YAML holding a top-level ``bus``/``store``/``adapters`` or an
  adapter ``type``.

Shapes: a whole config (``bus:``, ``store:``, ``adapters:`` ...), one adapter (``type: ...``), named
adapters (``name: {type: ...}``, as pasted under ``adapters:``), or, in a module of an adapter kind's
package, a fragment of that adapter's settings (``tls: {...}`` in ``adapters/mllp/``). Each is wrapped
into a whole config and validated with :func:`engine.config.parse_config`, which never looks at the
file system, so an example may name directories that do not exist.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.config import parse_config
from engine.errors import ConfigError
from tests.conftest import REPO
from tests.contract.conftest import adapter_settings_classes

ROOTS = ("engine", "adapters", "mappings")
#: a paragraph that announces a config example
ANNOUNCES_CONFIG = re.compile(r"\b(config|example)\b[^:]*::$", re.IGNORECASE)
TOP_LEVEL = frozenset({"bus", "store", "workers", "ops", "log", "adapters"})


@dataclass(frozen=True)
class Block:
    module: str  # dotted module name
    line: int  # line of the block in the docstring
    intro: str  # the line that ends in ``::``
    text: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def literal_blocks(doc: str) -> list[tuple[int, str, str]]:
    """(line, intro line, dedented text) of every ``::`` literal block of a docstring."""
    lines = doc.splitlines()
    out: list[tuple[int, str, str]] = []
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        base = len(line) - len(line.lstrip())
        body: list[str] = []
        for nxt in lines[i + 1 :]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= base:
                break
            body.append(nxt)
        text = textwrap.dedent("\n".join(body)).strip("\n")
        if text:
            out.append((i + 1, line.strip(), text))
    return out


def docstring_blocks() -> list[Block]:
    blocks: list[Block] = []
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=True)
            if doc:
                module = _module_name(path)
                blocks += [Block(module, n, intro, text) for n, intro, text in literal_blocks(doc)]
    return blocks


def _owning_kind(module: str) -> str | None:
    """The adapter kind whose package holds ``module`` (its Settings' module or a module beneath it)."""
    for kind, settings in adapter_settings_classes().items():
        home = settings.__module__
        if module == home or module.startswith(home + "."):
            return kind
    return None


def as_config(block: Block) -> dict[str, Any] | None:
    """The whole config a block stands for; None when it is not a config example."""
    announced = bool(ANNOUNCES_CONFIG.search(block.intro))
    try:
        data = yaml.safe_load(block.text)
    except yaml.YAMLError:
        if announced:
            pytest.fail(f"{block}: the example after {block.intro!r} is not valid YAML")
        return None
    if not isinstance(data, dict):
        if announced:
            pytest.fail(f"{block}: the example after {block.intro!r} is not a YAML mapping")
        return None
    if TOP_LEVEL & data.keys():
        return data
    if "type" in data:
        return {"adapters": {"example": data}}
    if data and all(isinstance(v, dict) and "type" in v for v in data.values()):
        return {"adapters": data}
    kind = _owning_kind(block.module)
    if announced and kind is not None:
        return {"adapters": {"example": {"type": kind, **data}}}
    if announced:
        pytest.fail(f"{block}: the example after {block.intro!r} is not a config, an adapter or a fragment of one")
    return None


BLOCKS = docstring_blocks()
CONFIGS = [(b, c) for b in BLOCKS if (c := as_config(b)) is not None]


@pytest.mark.parametrize("block,config", CONFIGS, ids=[str(b) for b, _ in CONFIGS])
def test_docstring_config_example_validates(block: Block, config: dict[str, Any]) -> None:
    try:
        parse_config(config, source=str(block))
    except ConfigError as exc:
        pytest.fail(f"the example after {block.intro!r} does not validate:\n{exc}")


def test_examples_are_found() -> None:
    """Not a vacuous pass: the engine's config, both buses and every adapter kind have an example."""
    kinds = {
        a.get("type")
        for _, c in CONFIGS
        if isinstance(c.get("adapters"), dict)
        for a in c["adapters"].values()
        if isinstance(a, dict)
    }
    assert set(adapter_settings_classes()) <= kinds, "an adapter kind without a config example in its docstrings"
    buses = {c["bus"].get("kind") for _, c in CONFIGS if isinstance(c.get("bus"), dict)}
    assert {"embedded", "rabbitmq"} <= buses


def test_literal_blocks_are_read_like_rst() -> None:
    doc = "Intro::\n\n    a: 1\n      b: 2\n\nafter\n\nConfig::\n\n    adapters: {}\n"
    assert literal_blocks(doc) == [(1, "Intro::", "a: 1\n  b: 2"), (8, "Config::", "adapters: {}")]
