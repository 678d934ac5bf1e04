"""No personal data through reasons or file names (issue #18, item 8), against RabbitMQ and PostgreSQL.

* A KITH document whose schema-invalid value holds an apostrophe, a name and a national number
  (``O'Hara <fnr>``): the value reaches none of the ``.reason`` file, ``dead_letters.reason``, the AppRec
  or ``enjournal dead-letters``.
* Files named after their patient (``Bjornar Odegard <fnr>.xml``, ``svar <6 digits> <5 digits>.xml``)
  through the real hl7-file and kith-file adapters: neither the name nor the digits reach a log line.
"""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench.data import adt_a08, patients
from engine import logging as elog
from engine.bus.rabbit import RabbitBus
from engine.config import parse_config
from engine.runtime import Runtime
from tests.conftest import FIXTURES
from tests.helpers import fnr
from tests.integration.pipeline_util import bus_section, cli, write_config

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]
SVAR = (FIXTURES / "kith" / "synthetic_svarrapport_v1.4.xml").read_bytes()


def _wait(pred: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.1)


def _adapters(tmp_path: Path) -> dict[str, Any]:
    common = {"stable_seconds": 0, "poll_interval": 0.05, "incomplete_grace_seconds": 0}
    return {
        "kith": {
            "type": "kith-file",
            "directory": str(tmp_path / "kith"),
            "outbox": str(tmp_path / "out"),
            "validate_xsd": True,
            "sender_her_id": "12345",
            **common,
        },
        "hl7": {"type": "hl7-file", "mapping": "hl7v2", "directory": str(tmp_path / "hl7"), **common},
    }


def _drop(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / (name + ".part")).write_bytes(data)
    (directory / (name + ".part")).rename(directory / name)


def _run(
    cfg: Any, drops: list[tuple[Path, str, bytes]], done: Callable[[Runtime], bool]
) -> tuple[str, list[dict[str, Any]]]:
    """Run the engine's adapters and a worker until ``done``; the log lines it wrote (rendered) and the
    dead letters."""
    buf = io.StringIO()
    elog.configure("debug", "json", stream=buf)
    rt = Runtime.build(cfg)
    rt.start()
    try:
        for directory, name, data in drops:
            _drop(directory, name, data)
        _wait(lambda: done(rt), "every file handled and committed")
        dead = rt.store.dead_letters()
    finally:
        assert rt.shutdown(20)
        RabbitBus(cfg.bus).delete_topology()
    return buf.getvalue(), dead


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(config, *args, env={"COLUMNS": "400"})  # type: ignore[no-any-return]


def test_schema_invalid_value_with_apostrophe_reaches_no_reason(
    tmp_path: Path, pg_url: str, amqp_names: dict[str, str]
) -> None:
    n = fnr(21)
    value = f"Kari O'Hara {n}".encode()
    files = {
        "attr.xml": SVAR.replace(b'<GenDate V="2024-03-05T10:15:00"/>', b'<GenDate V="' + value + b'"/>', 1),
        "text.xml": SVAR.replace(b'DN="Blod"/>', b'DN="Blod"/><Number>' + value + b"</Number>", 1),
    }
    assert all(f != SVAR for f in files.values())
    bus = bus_section("rabbitmq", tmp_path, amqp_names)
    cfg = parse_config({"bus": bus, "store": {"url": pg_url}, "adapters": {"kith": _adapters(tmp_path)["kith"]}})
    kith = tmp_path / "kith"
    logs, dead = _run(
        cfg, [(kith, name, data) for name, data in files.items()], lambda rt: len(rt.store.dead_letters()) == 2
    )

    reasons = [p.read_text(encoding="utf-8") for p in (kith / "error").glob("*.reason")]
    rows = [r["reason"] for r in dead]
    apprecs = [p.read_text(encoding="utf-8") for p in (tmp_path / "out").glob("*.xml")]
    config = write_config(tmp_path, bus, pg_url)
    cli = _cli(config, "dead-letters")
    cli_json = _cli(config, "dead-letters", "--json")
    assert cli.returncode == 0 and cli_json.returncode == 0, cli.stderr + cli_json.stderr
    assert len(reasons) == 2 and len(rows) == 2 and len(apprecs) == 2
    assert all(r.startswith("KITH_XSD_INVALID: line ") for r in rows)
    assert cli.stdout.count("KITH_XSD_INVALID: line ") == 2
    for where, text in {
        "reason files": reasons,
        "dead_letters.reason": rows,
        "apprecs": apprecs,
        "cli": [cli.stdout, cli.stderr],
        "cli json": [cli_json.stdout],
        "logs": [logs],
    }.items():
        joined = "\n".join(text)
        for secret in ("Hara", n, n[:6], n[6:], "Kari"):
            assert secret not in joined, (where, secret)


def test_file_names_with_names_and_numbers_reach_no_log(
    tmp_path: Path, pg_url: str, amqp_names: dict[str, str]
) -> None:
    n, m = fnr(22), fnr(23)
    names = [f"Bjornar Odegard {n}", f"svar {m[:6]} {m[6:]}"]
    p = patients(2)
    drops = [
        (tmp_path / "kith", names[0] + ".xml", SVAR),
        (tmp_path / "kith", names[1] + ".xml", b"<broken"),
        (tmp_path / "hl7", names[0] + ".hl7", adt_a08(1, p[0])),
        (tmp_path / "hl7", names[1] + ".hl7", b"junk"),
    ]
    cfg = parse_config(
        {
            "bus": bus_section("rabbitmq", tmp_path, amqp_names),
            "store": {"url": pg_url},
            "adapters": _adapters(tmp_path),
        }
    )

    def done(rt: Runtime) -> bool:
        left = [f for d in ("kith", "hl7") for f in (tmp_path / d).iterdir() if f.is_file()]
        return not left and rt.store.counts()["received"].get("kith", 0) == 2

    logs, _ = _run(cfg, drops, done)
    assert "kith.archived" in logs and "kith.rejected" in logs and "hl7_file.archived" in logs
    assert "hl7_file.error" in logs
    for secret in ("Bjornar", "Odegard", "svar ", n, m, n[:6], n[6:], m[:6], m[6:]):
        assert secret not in logs, secret
