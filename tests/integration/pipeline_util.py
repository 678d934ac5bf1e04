"""Helpers for pipeline tests: configs on real services, envelopes of the test mapping, subprocess engines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from engine.envelope import Envelope
from tests.conftest import REPO
from tests.helpers import fnr

TEST_MAPPING = "tests.e2e_mapping:map_message"


def make_envelopes(n: int, start: int = 0, patients: int = 50, adapter: str = "test") -> list[Envelope]:
    out = []
    for i in range(start, start + n):
        p = i % patients
        raw = f"P|{fnr(p)}|L{p}|{i}|{i % 97}.5".encode()
        out.append(Envelope.build(raw, adapter=adapter, mapping=TEST_MAPPING, content_type="text/plain"))
    return out


def bus_section(kind: str, tmp: Path, names: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    if kind == "embedded":
        return {"kind": "embedded", "path": str(tmp / "queue.db"), "lease_seconds": 5, **extra}
    return {"kind": "rabbitmq", "url": "amqp://guest@127.0.0.1:5672/%2F", **(names or {}), **extra}


def write_config(
    tmp: Path,
    bus: dict[str, Any],
    store_url: str,
    adapters: dict[str, Any] | None = None,
    workers: dict[str, Any] | None = None,
) -> Path:
    cfg = {
        "bus": bus,
        "store": {"url": store_url},
        "workers": workers or {"count": 1, "batch_size": 200},
        "log": {"level": "info", "format": "json"},
        "adapters": adapters or {},
    }
    p = tmp / "enjournal.yaml"
    p.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return p


def cli(config: Path, *args: str, text: bool = True, env: dict[str, str] | None = None) -> Any:
    """``enjournal ARGS -c CONFIG`` in a subprocess with a minimal environment (plus ``env``); its
    CompletedProcess (str output, or bytes with ``text=False``)."""
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args, "-c", str(config)],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=text,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", **(env or {})},
    )


def engine_process(config: Path, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "engine.cli", "run", "-c", str(config), *args]
    if log is None:
        return subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=out, stderr=out)
