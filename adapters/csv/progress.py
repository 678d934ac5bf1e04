"""``enjournal import ADAPTER FILE``: the import under a rich progress bar over the file's bytes (rows done,
rows per second and ETA), then a one-screen summary. Counts and file names only, never row content."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from adapters.base import AdapterRuntime
from adapters.csv.importer import import_file
from adapters.csv.options import CsvOptions
from adapters.csv.summary import ImportSummary


class _RowsColumn(ProgressColumn):
    """``123,456 rows  41,000 rows/s``"""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        elapsed = task.elapsed or 0.0
        rate = rows / elapsed if elapsed > 0 else 0.0
        return Text(f"{rows:,} rows  {rate:,.0f} rows/s", style="progress.data.speed")


def rich_import(
    name: str, settings: CsvOptions, runtime: AdapterRuntime, path: Path | str, console: Console | None = None
) -> ImportSummary:
    """:func:`adapters.csv.importer.import_file` under a progress bar (rows, rows/s, ETA); then the summary
    is printed."""
    console = console or Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        _RowsColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(Path(path).name, total=None, rows=0)

        def progress(rows: int, total: int, done: int) -> None:
            bar.update(task, total=total, completed=done, rows=rows)

        summary = import_file(name, settings, runtime, path, progress=progress)
    console.print(summary_table(summary))
    return summary


def summary_table(summary: ImportSummary) -> Table:
    t = Table(title=f"import {summary.file}", show_header=False, box=None)
    state = (
        "unchanged (already imported)"
        if summary.unchanged
        else ("complete" if summary.complete else "stopped (resumes at the checkpoint)")
    )
    rate = summary.rows / summary.seconds if summary.seconds and not summary.unchanged else 0.0
    for k, v in (
        ("state", state),
        ("rows", f"{summary.rows:,}"),
        ("accepted", f"{summary.accepted:,}"),
        ("rejected", f"{summary.rejected:,}"),
        ("chunks published", f"{summary.chunks:,}"),
        ("seconds", f"{summary.seconds:.1f}"),
        ("rows/s", f"{rate:,.0f}"),
        ("sha256", summary.sha256[:16] + "…"),
    ):
        t.add_row(k, v)
    return t
