"""Shared helpers for the KITH mapping tests: a fixed context and the canonical JSON of a result."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.model import MapContext, MappingResult
from mappings.kith import map_message
from tests.conftest import FIXTURES

KITH = FIXTURES / "kith"
CTX = MapContext(envelope_id="env-test", adapter="test", received_at=datetime(2026, 1, 1, tzinfo=UTC))


def mapped(name_or_bytes: str | bytes) -> MappingResult:
    raw = name_or_bytes if isinstance(name_or_bytes, bytes) else (KITH / name_or_bytes).read_bytes()
    return map_message(raw, CTX)


def canonical(result: MappingResult) -> dict[str, Any]:
    """The JSON form stored beside each fixture (records with provenance, links, warnings)."""
    return {
        "message_type": result.message_type,
        "source_message_id": result.source_message_id,
        "warnings": list(result.warnings),
        "links": [link.model_dump(mode="json") for link in result.links],
        "records": [record.model_dump(mode="json") for record in result.records],
    }


def records(result: MappingResult, kind: str) -> list[Any]:
    return [r for r in result.records if r.kind == kind]
