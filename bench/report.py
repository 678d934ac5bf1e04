"""One table (rich) and the same rows as JSON, for comparing runs.

Rows have a ``section``: ``floor`` (raw broker / database rates and the floor), ``path`` (end to end,
with the worker's per-stage µs per message from ``Worker.stats.stage_seconds``), ``stage``
(microbenchmarks, µs per message), ``model`` (what the ORU^R01 file path's CPU allows,
:mod:`bench.model`). Targets are evaluated here and shown as PASS / MISS next to the
figures; a path that did not run shows its note (``n/a (adapter missing)``) instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.floor import FloorResult
from bench.paths import PathResult
from bench.stages import StageResult

CSV_TARGET_ROWS = 1_000_000


@dataclass
class Row:
    section: str
    name: str
    messages: int | None = None
    seconds: float | None = None
    rate: float | None = None
    ratio: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    rss_mb: float | None = None
    us_per_msg: float | None = None
    stages_us: dict[str, float] = field(default_factory=dict)
    target: str = ""
    status: str = ""
    note: str = ""


def floor_rows(runs: list[FloorResult]) -> tuple[list[Row], float]:
    """Rows of each floor measurement (start and end of the run) and the floor used for ratios: their mean."""
    rows: list[Row] = []
    for k, f in enumerate(runs):
        n, when = f.messages, ("start", "end")[min(k, 1)]
        rows += [
            Row("floor", f"{when}: broker publish (confirms, window 1000)", n, f.publish_s, n / f.publish_s),
            Row("floor", f"{when}: broker consume (prefetch 1000, multi-ack)", n, f.consume_s, n / f.consume_s),
            Row("floor", f"{when}: broker round trip n/(pub+cons)", n, f.publish_s + f.consume_s, f.broker_rate),
            Row("floor", f"{when}: db executemany (1000/tx)", n, f.insert_s, f.db_rate),
            Row("floor", f"{when}: db COPY (1000/tx, reference)", n, f.copy_s, n / f.copy_s),
            Row("floor", f"{when}: min(round trip, executemany)", n, None, f.floor),
        ]
    floor = sum(f.floor for f in runs) / len(runs)
    rows.append(Row("floor", "FLOOR (mean of start and end)", None, None, floor, 1.0))
    return rows, floor


def _judge(row: Row, ok: bool | None, target: str) -> None:
    row.target = target
    row.status = "" if ok is None else ("PASS" if ok else "MISS")


def path_row(p: PathResult, floor: float) -> Row:
    rate = p.rate
    row = Row(
        "path",
        p.name,
        p.messages,
        p.seconds,
        rate,
        rate / floor if rate and floor else None,
        p.p50_ms,
        p.p99_ms,
        p.rss_mb,
        stages_us=p.stages_us,
        note=p.note,
    )
    _apply_target(row, p)
    return row


def _apply_target(row: Row, p: PathResult) -> None:
    ran = row.rate is not None
    if p.name == "hl7-file-oru" or (p.name.startswith("mllp-oru-") and "conn" in p.name):
        _judge(row, (row.ratio or 0) >= 0.5 if ran else None, ">= 0.5 x floor")
    elif p.name.startswith("mllp-oru-latency"):
        _judge(row, (p.p99_ms or 1e9) <= 15 if ran else None, "p99 <= 15 ms")
    elif p.name == "kith-file-svarrapport":
        _judge(row, (row.rate or 0) >= 1500 if ran else None, ">= 1,500 msg/s")
    elif p.name == "embedded-hl7-file-adt":
        _judge(row, (row.rate or 0) >= 2000 if ran else None, ">= 2,000 msg/s")
    elif p.name == "csv" and ran and row.seconds:
        est = row.seconds * CSV_TARGET_ROWS / p.messages
        ok = est <= 60 and (p.rss_mb or 0) <= 300
        scale = "" if p.messages >= CSV_TARGET_ROWS else f"est. {est:.0f} s for 1M; "
        _judge(row, ok, "1M x 20 cols <= 60 s, RSS <= 300 MB")
        row.note = (scale + row.note).strip()
    elif p.name == "csv":
        _judge(row, None, "1M x 20 cols <= 60 s, RSS <= 300 MB")


def stage_rows(stages: list[StageResult]) -> list[Row]:
    return [Row("stage", s.name, s.messages, us_per_msg=s.us_per_msg) for s in stages]


def _f(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "" if v is None else fmt.format(v)


def _stages_text(d: dict[str, float]) -> str:
    return " ".join(f"{k} {v:,.0f}" for k, v in d.items())


def render(rows: list[Row], title: str, console: Console | None = None) -> None:
    t = Table(title=title, show_lines=False)
    for col, just in (
        ("section", "left"),
        ("name", "left"),
        ("msgs", "right"),
        ("seconds", "right"),
        ("msg/s", "right"),
        ("x floor", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("peak RSS MB", "right"),
        ("µs/msg", "right"),
        ("target", "left"),
        ("", "left"),
        ("worker µs/msg (consume map store ack) / note", "left"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    last = None
    for r in rows:
        if last is not None and r.section != last:
            t.add_section()
        last = r.section
        status = {"PASS": "[green]PASS[/green]", "MISS": "[red]MISS[/red]"}.get(r.status, r.status)
        extra = " | ".join(x for x in (_stages_text(r.stages_us), r.note) if x)
        t.add_row(
            r.section,
            r.name,
            _f(r.messages),
            _f(r.seconds, "{:.2f}"),
            _f(r.rate),
            _f(r.ratio, "{:.2f}"),
            _f(r.p50_ms, "{:.1f}"),
            _f(r.p99_ms, "{:.1f}"),
            _f(r.rss_mb),
            _f(r.us_per_msg, "{:,.1f}"),
            r.target,
            status,
            extra,
        )
    (console or Console(width=220)).print(t)


def write_json(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.write_text(
        json.dumps({"meta": meta, "rows": [r.__dict__ for r in rows]}, indent=2, ensure_ascii=False), encoding="utf-8"
    )
