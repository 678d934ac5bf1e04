"""Shared builders for the CSV unit tests (synthetic identities only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.ids import synthetic_fnr
from engine.model import MapContext

FNR1 = synthetic_fnr(13, 11, 1969, 2)
FNR2 = synthetic_fnr(15, 7, 1965, 5)
assert FNR1 and FNR2


def spec_dict(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "observation",
        "source": "lab-x",
        "key": ["prove_id", "analyse"],
        "subject": {"national": "fnr", "local": "pasnr", "scope": "lab-x"},
        "event_time": {"column": "tatt", "formats": ["dd.mm.yyyy HH:MM", "dd.mm.yyyy"]},
        "decimal_comma": True,
        "required": ["analyse"],
        "fields": {
            "code": {"column": "analyse", "table": "analyser"},
            "value_num": "verdi",
            "unit": "enhet",
            "effective_time": {"column": "tatt"},
        },
        "tables": {
            "analyser": {
                "system": "2.16.578.1.12.4.1.1.7280",
                "local_system": "urn:lab-x",
                "codes": {"HB": {"code": "NOR05172", "display": "B-Hemoglobin"}},
            }
        },
    }
    base.update(over)
    return base


def ctx(options: dict[str, Any]) -> MapContext:
    return MapContext(
        envelope_id="e1",
        adapter="lab-csv",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        charset="utf-8",
        options=options,
    )


@pytest.fixture
def spec() -> dict[str, Any]:
    return spec_dict()
