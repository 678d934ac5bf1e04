"""Fixture pairs: each HL7 v2 file in tests/fixtures/hl7v2 beside its expected canonical JSON (or the
reason code it is rejected with), through :mod:`tests.fixture_pairs`; plus the shared corpus sweep.

The expected files were produced by the mapping and then checked by eye against the messages.
Regenerate after a deliberate mapping change with ``ENJOURNAL_REGEN=1 pytest tests/unit`` and review the
diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import PermanentError
from mappings.hl7v2 import map_message
from tests import fixture_pairs
from tests.fixture_pairs import Pair
from tests.unit.hl7v2.conftest import HL7_CORPUS, HL7_FIXTURES, make_ctx

PAIRS = fixture_pairs.pairs("hl7v2")


@pytest.mark.parametrize("pair", PAIRS, ids=str)
def test_fixture_pair(pair: Pair) -> None:
    fixture_pairs.check(pair, map_message)


def test_every_expectation_has_its_input() -> None:
    assert PAIRS and not fixture_pairs.orphans("hl7v2")


def _corpus_files() -> list[Path]:
    return sorted(p for p in HL7_CORPUS.glob("*") if p.is_file() and p.suffix != ".tsv") if HL7_CORPUS.is_dir() else []


@pytest.mark.skipif(not HL7_CORPUS.is_dir(), reason="shared HL7 v2 corpus not present")
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_shared_corpus_maps_or_is_rejected(path: Path) -> None:
    raw = path.read_bytes()
    try:
        result = map_message(raw, make_ctx())
    except PermanentError as exc:
        assert exc.code.startswith("HL7_")
        return
    assert result.records or result.links or result.warnings
    pinned = HL7_FIXTURES / path.name
    if pinned.exists():
        assert pinned.read_bytes() == raw, "fixture copy differs from the shared corpus"
