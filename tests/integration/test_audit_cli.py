"""The CLI and the audit log: ``journal`` records its read before printing, ``audit`` lists it by citizen
and actor, ``audit verify`` names a tampered row; ``token`` prints a token the verifier accepts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from engine import ids
from engine.audit import AuditLog
from engine.auth.tokens import os_user
from engine.auth.verify import Authenticator
from engine.config import load_config
from engine.store import Store
from tests.helpers import fnr, fnr_id, observation, outcome
from tests.integration.pipeline_util import cli

A = fnr(41)


def _config(tmp_path: Path, store_url: str) -> Path:
    cfg = {
        "bus": {"kind": "embedded", "path": str(tmp_path / "q.db")},
        "store": {"url": store_url},
        "log": {"level": "warning", "format": "json"},
        "auth": {"mode": "local", "local": {"key_dir": str(tmp_path / "keys")}},
    }
    p = tmp_path / "enjournal.yaml"
    p.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return p


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(config, *args, env={"USER": os.environ.get("USER", "tester")})  # type: ignore[no-any-return]


def test_journal_is_audited_and_the_audit_commands_find_it(tmp_path: Path, store_url: str) -> None:
    store = Store(store_url)
    try:
        store.commit_batch(
            [outcome("e1", [observation("obs:1", fnr_id(41), 1.0), observation("obs:2", fnr_id(41), 2.0)], [])]
        )
    finally:
        store.close()
    config = _config(tmp_path, store_url)
    r = _cli(config, "journal", A, "--json")
    assert r.returncode == 0, r.stderr
    assert _cli(config, "journal", fnr(42)).returncode == 1  # not found: audited too

    r = _cli(config, "audit", "--citizen", A, "--json")
    assert r.returncode == 0, r.stderr
    rows: list[dict[str, Any]] = json.loads(r.stdout)
    assert len(rows) == 1
    row = rows[0]
    user = os.environ.get("USER", "tester")
    assert (row["actor"], row["role"], row["outcome"], row["reason_code"]) == (
        f"os:{user}",
        "local",
        "allowed",
        "ALLOWED_LOCAL",
    )
    assert row["citizen_key"] == f"{ids.OID_FNR}|{A}" and sorted(row["resource_ids"]) == ["obs:1", "obs:2"]
    assert row["query"] == f"enjournal journal {A}"
    not_found = json.loads(_cli(config, "audit", "--citizen", fnr(42), "--json").stdout)
    assert [r["reason_code"] for r in not_found] == ["NOT_FOUND"]
    assert len(json.loads(_cli(config, "audit", "--actor", f"os:{user}", "--json").stdout)) == 2
    assert _cli(config, "audit", "--actor", "hpr:1", "--since", "2020-01-01", "--json").stdout.strip() == "[]"
    assert _cli(config, "audit").returncode == 2  # neither --citizen nor --actor

    ok = _cli(config, "audit", "verify")
    assert ok.returncode == 0 and "holds" in ok.stdout
    engine = sa.create_engine(store_url)
    with engine.begin() as c:
        if c.dialect.name == "postgresql":
            c.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        else:
            c.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        c.exec_driver_sql("UPDATE audit_log SET actor = 'os:nobody' WHERE id = 1")
    engine.dispose()
    bad = _cli(config, "audit", "verify")
    assert bad.returncode == 1 and "row 1" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr


def test_token_prints_a_token_the_verifier_accepts(tmp_path: Path, sqlite_url: str) -> None:
    config = _config(tmp_path, sqlite_url)
    r = _cli(config, "token", "--role", "clinician", "--hpr", "9144900", "--purpose", "TREAT")
    assert r.returncode == 0, r.stderr
    cfg = load_config(config)
    p = Authenticator(cfg.auth, tmp_path).authenticate(f"Bearer {r.stdout.strip()}", None)
    assert (p.actor, p.purpose) == ("hpr:9144900", "TREAT")
    ops = _cli(config, "token", "--role", "ops")
    assert Authenticator(cfg.auth, tmp_path).authenticate(f"Bearer {ops.stdout.strip()}", None).role == "ops"
    bad = _cli(config, "token", "--role", "citizen", "--pid", "12345678901")
    assert bad.returncode == 2 and "12345678901" not in bad.stderr
    assert os_user()


def test_token_refuses_a_mode_other_than_local(tmp_path: Path, sqlite_url: str) -> None:
    config = _config(tmp_path, sqlite_url)
    data = yaml.safe_load(config.read_text())
    data["auth"] = {"mode": "none"}
    config.write_text(yaml.safe_dump(data))
    r = _cli(config, "token", "--role", "ops")
    assert r.returncode == 2 and "auth.mode local" in r.stderr


def test_the_audit_log_is_in_every_new_store(store_url: str) -> None:
    store = Store(store_url)
    try:
        assert AuditLog(store).verify() is None
    finally:
        store.close()
