"""The configs shipped in deploy/ validate (the production example, the demo, the CSV examples)."""

from __future__ import annotations

import yaml

from engine.config import parse_config
from tests.conftest import REPO


def test_production_example_and_demo_validate() -> None:
    for rel in ("deploy/enjournal.example.yaml", "deploy/demo/enjournal.yaml"):
        cfg = parse_config(yaml.safe_load((REPO / rel).read_text(encoding="utf-8")), rel)
        assert cfg.adapters


def test_csv_examples_validate_as_adapters() -> None:
    for rel in ("deploy/csv/vedtak.yaml", "deploy/csv/fastlege.yaml"):
        adapters = yaml.safe_load((REPO / rel).read_text(encoding="utf-8"))
        cfg = parse_config({"adapters": adapters}, rel)
        assert all(a.type == "csv" for a in cfg.adapters.values())
