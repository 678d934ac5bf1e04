"""Config and CLI guards (issue #18, item 11): secrets in URL queries, no config, bad options, a bus user
without its password. Each one is a clean error (exit 2, the field or variable named, no value printed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import parse_config
from engine.errors import ConfigError
from tests.conftest import REPO

SECRET = "s3cr3t-Value"


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", **(env or {})},
    )


@pytest.mark.parametrize(
    "query",
    [
        f"password={SECRET}",
        f"PASSWORD={SECRET}",
        f"sslmode=require&PassWord={SECRET}",
        f"sslpassword={SECRET}",
        f"pass%77ord={SECRET}",
        f"token={SECRET}",
        f"pwd={SECRET}",
        f"api_key={SECRET}",
        f"client_secret={SECRET}",
    ],
)
@pytest.mark.parametrize("section", ["bus", "store"])
def test_secret_in_a_url_query_is_refused_without_printing_it(query: str, section: str) -> None:
    data = (
        {"bus": {"kind": "rabbitmq", "url": f"amqp://guest@127.0.0.1:5672/%2F?{query}"}}
        if section == "bus"
        else {"store": {"url": f"postgresql+psycopg://app@127.0.0.1/j?{query}"}}
    )
    with pytest.raises(ConfigError) as info:
        parse_config(data, "c.yaml")
    msg = str(info.value)
    assert f"{section}" in msg and ".url" in msg and "query" in msg and SECRET not in msg


@pytest.mark.parametrize(
    "query",
    [
        "sslmode=require",
        "passfile=/etc/enjournal/pgpass",
        "options=-csearch_path%3Dx",
        "heartbeat=30",
        "require_auth=scram-sha-256",
    ],
)
def test_ordinary_query_keys_are_accepted(query: str) -> None:
    cfg = parse_config({"store": {"url": f"postgresql+psycopg://app@127.0.0.1/j?{query}"}})
    assert cfg.store.url.endswith(query)


def test_secret_in_the_url_from_the_environment_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENJOURNAL_STORE_URL", f"postgresql+psycopg://app@127.0.0.1/j?password={SECRET}")
    with pytest.raises(ConfigError, match="store.url") as info:
        parse_config({})
    assert SECRET not in str(info.value)


def test_bus_user_without_its_password_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENJOURNAL_BUS_PASSWORD", raising=False)
    cfg = parse_config({"bus": {"kind": "rabbitmq", "url": "amqp://enjournal@127.0.0.1:5672/%2F"}})
    with pytest.raises(ConfigError, match="ENJOURNAL_BUS_PASSWORD"):
        cfg.bus.url_with_secret()
    monkeypatch.setenv("ENJOURNAL_BUS_PASSWORD", SECRET)
    assert SECRET in cfg.bus.url_with_secret()
    assert parse_config({"bus": {"kind": "rabbitmq", "url": "amqp://guest@h/%2F"}}).bus.url_with_secret()


def test_cli_without_config_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    for command in (
        ["status"],
        ["check"],
        ["dead-letters"],
        ["journal", "x"],
        ["replay", "x"],
        ["run", "--until-idle"],
        ["import", "a", "f.csv"],
    ):
        r = _cli(*command, cwd=tmp_path)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert "no config" in r.stderr and "Traceback" not in r.stderr, command
    assert list(tmp_path.iterdir()) == []


def test_cli_uses_enjournal_yaml_of_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "enjournal.yaml").write_text(
        f"store: {{url: 'sqlite:///{tmp_path}/j.db'}}\nbus: {{kind: embedded, path: '{tmp_path}/q.db'}}\n"
    )
    r = _cli("status", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "var").exists()


def test_map_without_config_still_works(tmp_path: Path) -> None:
    f = tmp_path / "x.hl7"
    f.write_bytes(b"junk")
    r = _cli("map", str(f), cwd=tmp_path)
    assert r.returncode == 1 and "REJECTED" in r.stderr and "no config" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.hl7"]


def test_dead_letters_limit_below_one_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "enjournal.yaml").write_text(
        f"store: {{url: 'sqlite:///{tmp_path}/j.db'}}\nbus: {{kind: embedded, path: '{tmp_path}/q.db'}}\n"
    )
    for bad in ("-1", "0"):
        r = _cli("dead-letters", "--limit", bad, cwd=tmp_path)
        assert r.returncode == 2 and "--limit" in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert _cli("dead-letters", "--limit", "1", cwd=tmp_path).returncode == 0


def test_cli_bus_user_without_password_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "bus: {kind: rabbitmq, url: 'amqp://enjournal@127.0.0.1:5672/%2F'}\n"
        f"store: {{url: 'sqlite:///{tmp_path}/j.db'}}\n"
    )
    for command in (["status"], ["check"]):
        r = _cli(*command, "-c", str(tmp_path / "c.yaml"), cwd=tmp_path)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert "ENJOURNAL_BUS_PASSWORD" in r.stderr + r.stdout and "Traceback" not in r.stderr + r.stdout


def test_cli_refuses_a_query_password_without_printing_it(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(f"store: {{url: 'postgresql+psycopg://app@127.0.0.1/j?password={SECRET}'}}\n")
    r = _cli("status", "-c", str(tmp_path / "c.yaml"), cwd=tmp_path)
    assert r.returncode == 2 and "store.url" in r.stderr and SECRET not in r.stderr + r.stdout
