"""Look-ups are exact (issue #18, item 9): SQL LIKE wildcards in an identifier never find another citizen's
journal, on SQLite and PostgreSQL, in the store and through ``enjournal journal``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine import ids
from engine.identity import AmbiguousIdentifier
from engine.journal_view import load_journal
from engine.model import IdentityLink
from tests.conftest import REPO
from tests.helpers import fnr, fnr_id, local_id, observation, outcome, person
from tests.integration.pipeline_util import write_config

A, B = fnr(31), fnr(32)


def _fill(store: Any) -> None:
    linked = fnr_id(31)
    store.commit_batch(
        [
            outcome("e1", [person(linked, others=(local_id("L1"),))], [IdentityLink(a=linked, b=local_id("L1"))]),
            outcome("e2", [observation("obs:b", fnr_id(32), 1.0, env_id="e2")], []),
            outcome("e3", [observation("obs:c", local_id("LOC-1"), 2.0, env_id="e3")], []),
            outcome("e4", [observation("obs:d", local_id("777", "HOSP_A"), 3.0, env_id="e4")], []),
            outcome("e5", [observation("obs:e", local_id("777", "HOSP_B"), 4.0, env_id="e5")], []),
        ]
    )


WILDCARDS = [
    "%",
    "1303%",
    "1307523068_",
    "_",
    "%%",
    "%|%",
    f"{A[:4]}%",
    f"{B[:-1]}_",
    f"%{B[-4:]}",
    "_" * 11,
    f"{ids.OID_FNR}|%",
    f"{ids.OID_FNR}|{B[:-1]}_",
    "LOC-_",
    "LOC%",
    "L_",
    "7%",
    "\\%",
    "[0-9]%",
    "*",
]


def test_wildcards_find_nobody_and_exact_values_find_their_citizen(any_store: Any) -> None:
    _fill(any_store)
    for query in WILDCARDS:
        assert load_journal(any_store, query) is None, query
    assert load_journal(any_store, A).citizen.best.value == A  # type: ignore[union-attr]
    assert load_journal(any_store, "L1").citizen.best.value == A  # type: ignore[union-attr]
    assert load_journal(any_store, B).citizen.best.value == B  # type: ignore[union-attr]
    assert load_journal(any_store, f"{ids.OID_FNR}|{B}").citizen.best.value == B  # type: ignore[union-attr]
    assert load_journal(any_store, "LOC-1").citizen.best.value == "LOC-1"  # type: ignore[union-attr]
    assert load_journal(any_store, f"{ids.OID_LOCAL_PREFIX}HOSP_A|777").current[0]["record_key"] == "obs:d"
    with pytest.raises(AmbiguousIdentifier):  # a local value of two systems: no journal is guessed
        load_journal(any_store, "777")


def test_a_national_number_is_found_by_its_exact_key_without_a_scan(any_store: Any) -> None:
    _fill(any_store)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(any_store.engine, "before_cursor_execute", seen)
    try:
        assert load_journal(any_store, B) is not None
    finally:
        sa.event.remove(any_store.engine, "before_cursor_execute", seen)
    assert statements and not any("LIKE" in s.upper() for s in statements), statements


def test_cli_journal_with_wildcards_prints_no_journal(tmp_path: Path, store_url: str) -> None:
    from engine.store import Store

    store = Store(store_url)
    try:
        _fill(store)
    finally:
        store.close()
    config = write_config(tmp_path, {"kind": "embedded", "path": str(tmp_path / "q.db")}, store_url)
    for query in ("%", "1303%", "1307523068_", f"{B[:-1]}_", "777"):
        r = subprocess.run(
            [sys.executable, "-m", "engine.cli", "journal", query, "--json", "-c", str(config)],
            cwd=REPO,
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )
        assert r.returncode == 1 and r.stdout == "", (query, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
