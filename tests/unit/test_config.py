"""Config: validated at start-up, errors name the file, the adapter and the field; secrets from the environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import json_schema, load_config, parse_config
from engine.errors import ConfigError
from tests.conftest import REPO


def test_defaults_are_the_embedded_bus_and_sqlite() -> None:
    cfg = parse_config({})
    assert cfg.bus.kind == "embedded" and cfg.store.url.startswith("sqlite")


def test_unknown_key_names_file_adapter_and_field(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("adapters:\n  lab:\n    type: hl7-file\n    directory: in\n    directroy_typo: x\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert str(p) in msg and "adapter 'lab'" in msg and "directroy_typo" in msg


def test_unknown_adapter_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="adapter 'x'"):
        parse_config({"adapters": {"x": {"type": "ftp"}}})


def test_password_in_file_is_refused_and_comes_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="password"):
        parse_config({"bus": {"kind": "rabbitmq", "url": "amqp://u:secret@h/%2F"}})
    monkeypatch.setenv("ENJOURNAL_STORE_PASSWORD", "s3cr3t")
    cfg = parse_config({"store": {"url": "postgresql+psycopg://app@127.0.0.1/j"}})
    assert "s3cr3t" in cfg.store.url_with_secret() and "s3cr3t" not in repr(cfg)


def test_cli_exits_2_on_a_bad_config(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("workers: {count: 0}\n")
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", "check", "-c", str(p)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "workers.count" in r.stderr


def test_json_schema_is_exported() -> None:
    schema = json_schema()
    assert "adapters" in schema["properties"]
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", "config", "schema"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and json.loads(r.stdout)["title"] == "EnjournalConfig"
