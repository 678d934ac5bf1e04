"""Ops API and CLI over a real store: status, health, metrics, journal, dead letters, replay."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from pathlib import Path

from engine.config import parse_config
from engine.envelope import Envelope
from engine.runtime import Runtime
from tests.helpers import fnr
from tests.integration.pipeline_util import TEST_MAPPING, bus_section, cli, make_envelopes, write_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(config, *args)  # type: ignore[no-any-return]


def test_ops_api_and_cli_commands(tmp_path: Path, sqlite_url: str) -> None:
    bus = bus_section("embedded", tmp_path)
    port = _free_port()
    cfg = parse_config({"bus": bus, "store": {"url": sqlite_url}, "ops": {"port": port}})
    rt = Runtime.build(cfg)
    bad = Envelope.build(b"BAD", adapter="test", mapping=TEST_MAPPING, content_type="text/plain")
    rt.bus.publish(make_envelopes(20) + [bad])
    rt.start(adapters=[])
    try:
        import time

        for _ in range(100):
            if rt.bus.depth()["work"] == 0 and rt.store.counts()["received"].get("test") == 21:
                break
            time.sleep(0.1)
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read())
        status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/status?counts=1", timeout=5).read())
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        assert rt.shutdown(10)
    assert health == {"status": "ok", "services": {"worker-0": "running"}, "bus": "ok", "store": "ok"}
    counts = status["counts"]
    assert counts["received"] == {"test": 21} and counts["dead_letters"] == {"test": 1}
    assert status["ready"] and status["queue"]["work"] == 0
    assert 'enjournal_dead_letters_total{adapter="test",code="TEST_BAD_MESSAGE"}' in metrics

    config = write_config(tmp_path, bus, sqlite_url)
    j = _cli(config, "journal", fnr(3), "--json")
    assert j.returncode == 0, j.stderr
    doc = json.loads(j.stdout)
    assert doc["best_identifier"]["value"] == fnr(3) and any(r["kind"] == "observation" for r in doc["records"])
    dl = _cli(config, "dead-letters", "--json")
    assert dl.returncode == 0 and json.loads(dl.stdout)[0]["reason_code"] == "TEST_BAD_MESSAGE"
    st = _cli(config, "status", "--json")
    assert st.returncode == 0 and json.loads(st.stdout)["dead_letters"] == {"test": 1}
    assert "received" not in json.loads(st.stdout)  # the heavy counts only with --counts
    st = _cli(config, "status", "--json", "--counts")
    assert st.returncode == 0 and json.loads(st.stdout)["received"] == {"test": 21}
    rp = _cli(config, "replay", bad.id)
    assert rp.returncode == 0 and "replayed 1" in rp.stdout
    assert _cli(config, "journal", "00000000000").returncode == 1
