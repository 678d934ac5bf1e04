"""``enjournal check`` writes nothing: no directory, no SQLite file, no schema, no queue table; what ``run``
would create is reported as still to come, and a schema behind is reported as migrations pending."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from engine.check import exit_status, run_checks
from engine.config import parse_config
from engine.store import Store
from engine.store.migrations import STEPS
from tests.conftest import REPO
from tests.helpers import CSV_SPEC


def _config(root: Path) -> dict[str, object]:
    """Everything under ``root/var``, which does not exist."""
    var = root / "var"
    return {
        "bus": {"kind": "embedded", "path": str(var / "queue" / "q.db")},
        "store": {"url": f"sqlite:///{var / 'db' / 'journal.db'}"},
        "adapters": {
            "care": {"type": "csv", "directory": str(var / "in" / "csv"), "spec": CSV_SPEC},
            "lab-feed": {"type": "mllp", "host": "127.0.0.1", "port": 0},
        },
    }


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "check"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_check_reports_a_missing_inbox_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "enjournal.yaml").write_text(yaml.safe_dump(_config(tmp_path)))
    before = _tree(tmp_path)
    r = _check(tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "adapter care: CONFIG_INVALID" in r.stdout and "does not exist" in r.stdout
    assert _tree(tmp_path) == before


def test_check_on_a_fresh_install_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "enjournal.yaml").write_text(yaml.safe_dump(_config(tmp_path)))
    (tmp_path / "var" / "in" / "csv").mkdir(parents=True)  # the sender's drop folder exists; nothing else
    before = _tree(tmp_path)
    r = _check(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "store: ok (sqlite), not created yet" in r.stdout
    assert "bus: ok (embedded), not created yet" in r.stdout
    assert "adapter care: ok" in r.stdout and "adapter lab-feed: ok" in r.stdout
    assert _tree(tmp_path) == before


def test_check_reports_pending_migrations_without_running_them(tmp_path: Path) -> None:
    cfg = parse_config(_config(tmp_path))
    db = tmp_path / "var" / "db" / "journal.db"
    db.parent.mkdir(parents=True)
    sqlite3.connect(db).close()  # an empty database: no schema at all
    queue = tmp_path / "var" / "queue" / "q.db"
    queue.parent.mkdir(parents=True)
    sqlite3.connect(queue).close()
    before = _tree(tmp_path)
    findings = {f.name: f for f in run_checks(cfg)}
    pending = f"schema version 0, migrations pending: {len(STEPS)}"
    assert findings["store"].ok and pending in findings["store"].detail
    assert findings["bus"].ok and "queue tables not created yet" in findings["bus"].detail
    assert _tree(tmp_path) == before
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_check_of_a_current_store_reads_it_without_a_trace(tmp_path: Path) -> None:
    cfg = parse_config(_config(tmp_path))
    Store(cfg.store.url).close()  # migrated: the schema is current
    (tmp_path / "var" / "in" / "csv").mkdir(parents=True)
    before = _tree(tmp_path)
    findings = run_checks(cfg)
    store = next(f for f in findings if f.name == "store")
    assert store.ok and "migrations pending" not in store.detail
    assert _tree(tmp_path) == before  # not even a -wal or -shm file
    assert exit_status(findings) == 0


def test_an_unreadable_store_is_exit_2_and_an_adapter_problem_exit_1(tmp_path: Path) -> None:
    data = _config(tmp_path)
    db = tmp_path / "var" / "db" / "journal.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"not a database" * 100)
    findings = run_checks(parse_config(data))
    assert exit_status(findings) == 2
    assert not next(f for f in findings if f.name == "store").ok
    db.unlink()
    data["adapters"] = {"care": {"type": "csv", "directory": str(tmp_path), "spec": {**CSV_SPEC, "tables": {}}}}
    (tmp_path / "x.csv").write_text("other;columns\n1;2\n")
    findings = run_checks(parse_config(data))
    assert [f.name for f in findings if not f.ok] == ["care"] and exit_status(findings) == 1
