"""Fixture pairs: the deploy/csv sample exports mapped with their example configs -> expected canonical JSON.

Regenerate after an intended change with ``ENJOURNAL_REGEN=1 pytest tests/unit/csv/test_csv_samples.py``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from adapters.csv import Settings
from engine import ids
from engine.model import MapContext
from mappings.csv_decl import map_message
from tests.conftest import REPO

DEPLOY = REPO / "deploy" / "csv"
HERE = Path(__file__).parent / "fixtures"
CASES = [("vedtak.yaml", "vedtak_20260115.csv"), ("fastlege.yaml", "fastlege_pasientliste.csv")]


def _settings(config: str) -> tuple[str, Settings]:
    name, data = next(iter(yaml.safe_load((DEPLOY / config).read_text(encoding="utf-8")).items()))
    for t in data["spec"].get("tables", {}).values():
        if "path" in t:
            t["path"] = str(REPO / t["path"])
    return name, Settings.model_validate(data)


def _result(config: str, sample: str) -> dict[str, Any]:
    name, s = _settings(config)
    ctx = MapContext(
        envelope_id="env-1",
        adapter=name,
        source_system=s.source_system,
        received_at=datetime(2026, 1, 16, tzinfo=UTC),
        charset=None,
        options=s.mapping_options(),
    )
    res = map_message((DEPLOY / "samples" / sample).read_bytes(), ctx)  # raw file, charset undeclared
    return {
        "records": [r.model_dump(mode="json") for r in res.records],
        "links": [link.model_dump(mode="json") for link in res.links],
        "warnings": list(res.warnings),
    }


@pytest.mark.parametrize("config,sample", CASES)
def test_sample_maps_to_expected_json(config: str, sample: str) -> None:
    got = _result(config, sample)
    expected_file = HERE / (sample + ".expected.json")
    if os.environ.get("ENJOURNAL_REGEN") == "1":
        expected_file.write_bytes(orjson.dumps(got, option=orjson.OPT_INDENT_2) + b"\n")
    assert got == orjson.loads(expected_file.read_bytes())


def test_samples_use_synthetic_numbers_only() -> None:
    for _, sample in CASES:
        raw = (DEPLOY / "samples" / sample).read_bytes().decode("utf-8-sig", errors="replace")
        for number in ids.find_valid_numbers(raw):
            assert int(number[2]) >= 8, "sample identity numbers must be synthetic (month + 80)"


def test_sample_encodings_are_as_documented() -> None:
    from adapters.csv.reader import scan

    assert scan(DEPLOY / "samples" / "vedtak_20260115.csv").encoding == "cp1252"
    assert scan(DEPLOY / "samples" / "fastlege_pasientliste.csv").encoding == "utf-8-sig"
