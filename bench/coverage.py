"""The coverage table over a corpus: per file, the share of its source leaves the mapping represents.

    .venv/bin/python -m bench.coverage [CORPUS] [--top N] [--json]

``CORPUS`` (default ``../shared/corpus`` beside the repository) holds the files listed in its
``SOURCES.tsv`` (``local_name`` column; without the list, every file under it). Each file is mapped with
the mapping its content names (:func:`engine.sniff.sniff_mapping`) and measured with
:func:`engine.coverage.measure`; a file the mapping rejects (an AppRec receipt, a malformed sample, an
unsupported type) is listed with its reason code instead of a share. ``--top N`` adds the N commonest
unmapped paths per mapping. Paths and counts only: no value of a file is printed. Without the corpus the
command says so and exits 0 (CI may run without it).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine import registry
from engine.coverage import Coverage, measure
from engine.errors import PermanentError
from engine.model import MapContext
from engine.sniff import sniff_mapping

#: the share every clinical file should reach (issue 20)
GOAL = 0.95
DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
_CTX = MapContext(envelope_id="coverage", adapter="corpus", received_at=datetime(2026, 1, 1, tzinfo=UTC))


@dataclass(frozen=True)
class Row:
    """One corpus file: its name, mapping, and either its coverage or the code it was rejected with."""

    name: str
    mapping: str
    coverage: Coverage | None = None
    rejected: str | None = None


def corpus_files(corpus: Path) -> list[Path]:
    """The files ``SOURCES.tsv`` lists (else every file but the list), sorted."""
    listing = corpus / "SOURCES.tsv"
    if listing.is_file():
        with listing.open(encoding="utf-8", newline="") as fh:
            names = [r["local_name"] for r in csv.DictReader(fh, delimiter="\t") if r.get("local_name")]
        return sorted(corpus / n for n in names if (corpus / n).is_file())
    return sorted(p for p in corpus.rglob("*") if p.is_file() and not p.name.startswith("."))


def measure_file(path: Path, root: Path) -> Row:
    """The :class:`Row` of one file (mapped and measured, or rejected with its code)."""
    raw = path.read_bytes()
    mapping = sniff_mapping(raw)
    name = str(path.relative_to(root))
    try:
        result = registry.resolve_mapping(mapping)(raw, _CTX)
        return Row(name, mapping, coverage=measure(raw, _CTX, mapping, result))
    except PermanentError as exc:
        return Row(name, mapping, rejected=exc.code)


def table(rows: list[Row], top: int) -> str:
    """The rows as a text table, then the ``top`` commonest unmapped paths per mapping."""
    width = max((len(r.name) for r in rows), default=10)
    lines = [f"{'file':<{width}}  mapping  share    leaves  repr.  ignored  unmapped"]
    for r in rows:
        c = r.coverage
        if c is None:
            lines.append(f"{r.name:<{width}}  {r.mapping:<7}  not clinical / rejected: {r.rejected}")
            continue
        mark = "" if c.share >= GOAL else "  < goal"
        lines.append(
            f"{r.name:<{width}}  {r.mapping:<7}  {c.share * 100:5.1f} %  {c.leaves:>6}  {c.represented:>5}"
            f"  {c.ignored_leaves:>7}  {c.unmapped_leaves:>8}{mark}"
        )
    for mapping, counts in sorted(unmapped_by_mapping(rows).items()):
        if top:
            lines.append(f"\n{mapping}: the {top} commonest unmapped paths (leaves over all files)")
            lines += [f"  {n:>5}  {p}" for p, n in counts.most_common(top)]
    return "\n".join(lines)


def unmapped_by_mapping(rows: list[Row]) -> dict[str, Counter[str]]:
    """Unmapped leaves per path, summed per mapping over the measured rows."""
    out: dict[str, Counter[str]] = {}
    for r in rows:
        if r.coverage is not None:
            counts = out.setdefault(r.mapping, Counter())
            for p in r.coverage.unmapped:
                counts[p.path] += p.count
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coverage", description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--top", type=int, default=10, help="commonest unmapped paths per mapping (0: none)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    args = parser.parse_args(argv)
    corpus: Path = args.corpus
    if not corpus.is_dir():
        print(f"no corpus at {corpus.name}: nothing to measure", file=sys.stderr)
        return 0
    rows = [measure_file(p, corpus) for p in corpus_files(corpus)]
    if args.json:
        doc = [
            {"file": r.name, "mapping": r.mapping, "rejected": r.rejected}
            | ({"coverage": r.coverage.model_dump(mode="json")} if r.coverage else {})
            for r in rows
        ]
        print(json.dumps(doc, indent=2))
    else:
        print(table(rows, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
