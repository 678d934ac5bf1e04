"""The read benchmark's plumbing on the real PostgreSQL: it seeds a small journal by COPY, serves it through
``enjournal serve`` with a clinician's token, times both requests and their floor at every concurrency, and
drops its schema."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from bench import read


@pytest.mark.slow
def test_read_bench_seeds_serves_times_and_cleans_up(tmp_path: Path, pg_base_url: str) -> None:
    result = read.measure(tmp_path, versions=3000, citizens=30, seconds=0.3, workers=1)
    rows = read.summary(result)
    assert len(rows) == 2 * len(read.CONCURRENCY) and result.schema
    assert all(r["api_rps"] > 0 and r["floor_rps"] > 0 for r in rows)
    with psycopg.connect(read.PG_URL) as c:
        left = c.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (result.schema,)).fetchone()
    assert left is not None and left[0] == 0


def test_the_seed_gives_one_citizen_200_records() -> None:
    fnrs = read._fnrs(5)
    lines = list(read._rows(1000, fnrs))
    first = [ln for ln in lines if ln.split(b"\t")[3].endswith(fnrs[0].encode())]
    assert len(first) == read.SPECIAL_RECORDS and len(lines) == 1000
