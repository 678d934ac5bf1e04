"""Every KITH fixture in tests/fixtures/kith (official SAREPTA samples + a synthetic Svarrapport) against its
reviewed canonical JSON (or the reason code it is rejected with), through :mod:`tests.fixture_pairs`.

Regenerate after a deliberate mapping change with ``ENJOURNAL_REGEN=1 pytest tests/unit`` and review the
diff by eye.
"""

from __future__ import annotations

import pytest

from engine.errors import PermanentError
from mappings.kith import map_message
from tests import fixture_pairs
from tests.conftest import SHARED_CORPUS
from tests.fixture_pairs import Pair
from tests.unit.kith.helpers import KITH, mapped

PAIRS = fixture_pairs.pairs("kith")


@pytest.mark.parametrize("pair", PAIRS, ids=str)
def test_fixture_pair(pair: Pair) -> None:
    fixture_pairs.check(pair, map_message)


def test_every_expectation_has_its_input() -> None:
    assert PAIRS and not fixture_pairs.orphans("kith")


def test_every_shared_corpus_file_maps_or_is_rejected_with_a_code() -> None:
    corpus = SHARED_CORPUS / "kith"
    if not corpus.is_dir():
        pytest.skip("shared corpus not present")
    rejected = {p.input.name: p.rejected_code for p in PAIRS}
    for xml in sorted(corpus.glob("*.xml")):
        try:
            result = mapped(xml.read_bytes())
        except PermanentError as exc:
            assert exc.code == rejected.get(xml.name), xml.name
            continue
        assert result.records and result.source_message_id, xml.name
        assert (KITH / xml.name).read_bytes() == xml.read_bytes(), f"{xml.name}: fixture copy is stale"
