"""The benchmark's CPU model of the ORU^R01 file path (pure arithmetic on one run's figures)."""

from __future__ import annotations

import pytest

from bench import model, stages
from bench.paths import PathResult
from bench.stages import StageResult


def _path(mapping: float = 400.0, engine: float = 800.0, rate: float = 2000.0) -> PathResult:
    return PathResult(
        model.PATH,
        int(rate * 10),
        seconds=10.0,
        stages_us={"map": 500.0, "map_cpu": mapping},
        cpu_us={"engine": engine, "broker": 50.0, "database": 150.0, "intake": 90.0},
    )


def test_ceiling_and_mapping_budget() -> None:
    # CPU 1000 µs/msg (intake is inside engine), mapping 400 -> 600 fixed: 2 cores carry 3333 msg/s
    (row,) = model.oru_rows([_path()], [], floor=5000.0, cores=2)
    assert row.section == "model" and row.us_per_msg == pytest.approx(600.0)
    assert row.rate == pytest.approx(2e6 / 600) and row.ratio == pytest.approx(2e6 / 600 / 5000)
    # 0.5 x 5000 msg/s on 2 cores leaves 800 µs per message; 600 are fixed -> 200 for mapping
    assert "mapping budget for 0.5 x floor 200 µs/msg" in row.note
    assert "CPU µs/msg 1,000 = mapping 400 + the rest 600" in row.note
    assert "cores used 100%" in row.note  # 1000 µs x 2000 msg/s = 2 cores


def test_a_negative_budget_and_the_models_share() -> None:
    models = [StageResult(stages.MODELS_ORU, 1000, 150.0)]
    (row,) = model.oru_rows([_path(mapping=100.0, engine=1700.0)], models, floor=5000.0, cores=2)
    assert "budget for 0.5 x floor -1,000 µs/msg (the pydantic models alone 150)" in row.note


@pytest.mark.parametrize(
    "path",
    [
        PathResult("hl7-file-adt", 100, seconds=1.0, stages_us={"map_cpu": 1.0}, cpu_us={"engine": 1.0}),
        PathResult(model.PATH, 100, note="n/a"),  # did not run
        PathResult(model.PATH, 100, seconds=1.0, stages_us={"map": 1.0}, cpu_us={"engine": 1.0}),  # no map CPU
        PathResult(model.PATH, 100, seconds=1.0, stages_us={"map_cpu": 1.0}),  # no process CPU
        PathResult(model.PATH, 100, seconds=1.0, stages_us={"map_cpu": 2.0}, cpu_us={"engine": 1.0}),  # inconsistent
    ],
)
def test_no_row_without_the_figures(path: PathResult) -> None:
    assert model.oru_rows([path], [], floor=5000.0, cores=2) == []


def test_no_row_without_a_floor() -> None:
    assert model.oru_rows([_path()], [], floor=0.0, cores=2) == []
