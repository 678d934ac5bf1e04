"""What the ORU^R01 file path's CPU allows: its rate with mapping free, and the mapping budget.

The path is CPU-bound here: its measured CPU per message (engine, broker and database processes,
:mod:`bench.cpu`) times its rate fills the machine's cores. The workers also measure the CPU their map
stage takes (``map_cpu``, :class:`engine.worker.WorkerStats`). From one run's figures the model gives:

* the ceiling with mapping free: ``cores / (CPU per message - mapping CPU per message)``, what no
  mapper, however fast, can pass in this pipeline and record layout;
* the mapping budget: the mapping CPU per message that leaves the path ``TARGET`` x the floor
  (negative: not reachable even with a free mapping), beside the mapping CPU now and, when the stages
  ran, what the canonical models alone take (:data:`bench.stages.MODELS_ORU`: validating and
  serialising an ORU's records, the serialising being done in the store).

It assumes the cores are fully used; the measured rate's own use (``CPU x rate / cores``) is in the
note, so a budget can be read against it.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.paths import PathResult
from bench.report import Row
from bench.stages import MODELS_ORU, StageResult

TARGET = 0.5  # issue #3: ORU^R01 end to end >= 0.5 x the floor
PATH = "hl7-file-oru"


def oru_rows(paths: Sequence[PathResult], stages: Sequence[StageResult], floor: float, cores: int) -> list[Row]:
    """The model's row (none when the ORU file path did not run or measured no CPU)."""
    path = next((p for p in paths if p.name == PATH), None)
    if path is None or not path.rate or floor <= 0 or cores < 1:
        return []
    cpu = sum(path.cpu_us.get(k, 0.0) for k in ("engine", "broker", "database"))
    mapping = path.stages_us.get("map_cpu")
    if not cpu or mapping is None or mapping >= cpu:
        return []
    fixed = cpu - mapping
    ceiling = cores * 1e6 / fixed
    budget = cores * 1e6 / (TARGET * floor) - fixed
    models = {s.name: s.us_per_msg for s in stages}.get(MODELS_ORU)
    note = (
        f"CPU µs/msg {cpu:,.0f} = mapping {mapping:,.0f} + the rest {fixed:,.0f}; cores used "
        f"{cpu * path.rate / 1e6 / cores:.0%}; mapping budget for {TARGET:g} x floor {budget:,.0f} µs/msg"
        + (f" (the pydantic models alone {models:,.0f})" if models is not None else "")
    )
    return [
        Row(
            "model",
            f"{PATH} ceiling: the same with mapping free",
            rate=ceiling,
            ratio=ceiling / floor,
            us_per_msg=fixed,
            note=note,
        )
    ]
