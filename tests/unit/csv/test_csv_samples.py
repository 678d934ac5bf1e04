"""Fixture pairs: the deploy/csv sample exports mapped with their example configs -> expected canonical JSON
(tests/fixtures/csv, through :mod:`tests.fixture_pairs`).

Regenerate after an intended change with ``ENJOURNAL_REGEN=1 pytest tests/unit`` and review the diff.
"""

from __future__ import annotations

import pytest

from engine import ids
from mappings.csv_decl import map_message
from tests import fixture_pairs
from tests.conftest import REPO
from tests.fixture_pairs import Pair

DEPLOY = REPO / "deploy" / "csv"
PAIRS = fixture_pairs.pairs("csv")


@pytest.mark.parametrize("pair", PAIRS, ids=str)
def test_sample_maps_to_expected_json(pair: Pair) -> None:
    fixture_pairs.check(pair, map_message)


def test_every_sample_has_its_pair() -> None:
    assert sorted(p.input for p in PAIRS) == sorted((DEPLOY / "samples").glob("*.csv"))
    assert not fixture_pairs.orphans("csv")


def test_samples_use_synthetic_numbers_only() -> None:
    for pair in PAIRS:
        raw = pair.raw().decode("utf-8-sig", errors="replace")
        for number in ids.find_valid_numbers(raw):
            assert int(number[2]) >= 8, "sample identity numbers must be synthetic (month + 80)"


def test_sample_encodings_are_as_documented() -> None:
    from adapters.csv.reader import scan

    assert scan(DEPLOY / "samples" / "vedtak_20260115.csv").encoding == "cp1252"
    assert scan(DEPLOY / "samples" / "fastlege_pasientliste.csv").encoding == "utf-8-sig"
