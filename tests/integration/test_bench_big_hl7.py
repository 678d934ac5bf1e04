"""``make bench BENCH_ARGS="--hl7-big-mb N"``: the HL7 file adapter alone on one big file, its peak RSS."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import big_hl7, data

pytestmark = pytest.mark.rabbitmq


def test_big_hl7_measure_runs_the_adapter_alone(rabbit_url: str, tmp_path: Path) -> None:
    res = big_hl7.measure(1, tmp_path, data.patients(20))
    assert res.messages >= 900 and res.rss_mb and res.rss_mb > 10, res.note
    assert "archived True" in res.note and not list(tmp_path.glob("hl7-big-*/in/big.hl7"))
