"""``enjournal serve`` as a process: it answers on the port it was given with uvicorn workers, refuses to run
without authentication off the loopback interface, and its log lines carry no query strings (a search by
national id leaves no number in the log)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from engine import ids
from tests.conftest import REPO
from tests.helpers import fnr
from tests.integration.pipeline_util import write_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(config: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "engine.cli", "serve", "-c", str(config), *args]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=out, stderr=out)


def _wait(url: str, proc: subprocess.Popen[bytes], seconds: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode}")
        try:
            return httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail("serve did not answer")


@pytest.mark.slow
def test_serve_answers_with_two_workers_and_logs_no_query(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, {"kind": "embedded", "path": str(tmp_path / "q.db")}, sqlite_url)
    port = _free_port()
    log = tmp_path / "serve.log"
    proc = _serve(config, "--port", str(port), "--workers", "2", log=log)
    try:
        base = f"http://127.0.0.1:{port}/fhir"
        assert _wait(f"{base}/metadata", proc).json()["resourceType"] == "CapabilityStatement"
        number = fnr(7)
        r = httpx.get(f"{base}/Patient", params={"identifier": f"urn:oid:{ids.OID_FNR}|{number}"})
        assert r.status_code == 200 and r.json()["total"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "api.request" in text and "/fhir/Patient" in text
    assert number not in text and "identifier=" not in text


def test_serve_refuses_unauthenticated_off_loopback(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, {"kind": "embedded", "path": str(tmp_path / "q.db")}, sqlite_url)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "engine.cli", "serve", "-c", str(config), "--host", "0.0.0.0", "--port", "1"]
    done = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"127.0.0.1" in done.stderr
