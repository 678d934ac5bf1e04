"""Shared fixtures for the HL7 v2 parser and mapping tests: a fixed MapContext and fixture paths."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.model import MapContext, MappingResult, Observation
from tests.conftest import FIXTURES, SHARED_CORPUS

HL7_FIXTURES: Path = FIXTURES / "hl7v2"
HL7_CORPUS: Path = SHARED_CORPUS / "hl7v2"
RECEIVED = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def make_ctx(**options: object) -> MapContext:
    return MapContext(
        envelope_id="env-test-1",
        adapter="hl7-test",
        source_system="test-system",
        received_at=RECEIVED,
        options=dict(options),
    )


@pytest.fixture
def ctx() -> MapContext:
    return make_ctx()


def observations(result: MappingResult) -> list[Observation]:
    """The Observation records of a mapping result, in order (ORU results come with their Person, Report,
    Requisition and Specimen records)."""
    return [r for r in result.records if isinstance(r, Observation)]


def of_kind(result: MappingResult, kind: str) -> list[Any]:
    """The records of one ``kind`` in a mapping result, in order."""
    return [r for r in result.records if r.kind == kind]


def fixture_bytes(name: str) -> bytes:
    return (HL7_FIXTURES / name).read_bytes()
