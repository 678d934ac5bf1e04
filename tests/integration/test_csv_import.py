"""CSV import on real buses and stores: samples, rejects, unchanged re-import, encodings into the journal,
and kill -9 mid-import then resume with every row on the bus exactly once (no fake broker)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from adapters.csv import Settings, build
from adapters.csv.importer import import_file
from engine import ids
from engine.bus.embedded import EmbeddedBus
from engine.config import RabbitBusConfig
from engine.envelope import Envelope
from engine.errors import BusUnavailable, ConfigError, PermanentError
from engine.store import Store
from engine.worker import Mapper, Worker
from tests.conftest import REPO
from tests.helpers import CSV_SPEC

DEPLOY = REPO / "deploy" / "csv"
FNRS = [v for v in (ids.synthetic_fnr(d, 1 + d % 12, 1960 + d, 100 + d) for d in range(1, 29)) if v]


@dataclass
class Runtime:
    bus: Any
    keys: Any = None


def _settings(tmp: Path, **over: Any) -> Settings:
    spec = CSV_SPEC
    return Settings.model_validate({"directory": str(tmp / "in"), "stable_seconds": 0, "spec": spec, **over})


def _deploy_settings(yaml_name: str, tmp: Path) -> tuple[str, Settings]:
    name, data = next(iter(yaml.safe_load((DEPLOY / yaml_name).read_text(encoding="utf-8")).items()))
    data["directory"] = str(tmp / "in")
    for t in data["spec"].get("tables", {}).values():
        if "path" in t:
            t["path"] = str(REPO / t["path"])
    return name, Settings.model_validate(data)


def _embedded_envelopes(bus: EmbeddedBus) -> list[Envelope]:
    c = bus.consumer()
    out = []
    while batch := c.fetch(1000, 0.1):
        out += [d.envelope for d in batch]
        c.ack(batch)
    c.close()
    return out


def test_vedtak_sample_cp1252_rejects_and_unchanged(tmp_path: Path) -> None:
    name, s = _deploy_settings("vedtak.yaml", tmp_path)
    s.ensure_dirs()
    src = DEPLOY / "samples" / "vedtak_20260115.csv"
    path = s.directory / src.name
    shutil.copy(src, path)
    bus = EmbeddedBus(tmp_path / "q.db")
    summary = import_file(name, s, Runtime(bus), path)
    assert (summary.rows, summary.accepted, summary.rejected, summary.chunks) == (7, 6, 1, 1)
    envs = _embedded_envelopes(bus)
    chunk, reject = sorted(envs, key=lambda e: e.rejection is not None)
    assert chunk.charset == "utf-8" and chunk.content_type == "text/csv"
    assert chunk.attributes["first_row"] == "1" and chunk.attributes["rows"] == "6"
    assert "Åse Ødegård" in chunk.raw.decode("utf-8")
    assert str(reject.rejection) == "MISSING_VALUE: row 5 column vedtaksdato"
    archived = s.archive / src.name
    assert archived.exists() and not path.exists()
    report = (s.archive / (src.name + ".rejects.csv")).read_text(encoding="utf-8")
    assert report == "row;column;reason\n5;vedtaksdato;MISSING_VALUE\n"
    assert "REJECTED_ROWS" in (s.archive / (src.name + ".reason")).read_text()
    shutil.copy(src, path)  # the same export dropped again
    again = import_file(name, s, Runtime(bus), path)
    assert again.unchanged and again.chunks == 0 and _embedded_envelopes(bus) == []


def test_reject_report_has_no_personal_data(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    s.ensure_dirs()
    p = s.directory / "x.csv"
    p.write_text(
        f"id;fnr;kode;navn;dato\n1;{FNRS[0]};A;Åse Ødegård;32.01.2026\n2;;A;Kåre Ås;01.01.2026\n", encoding="utf-8"
    )
    summary = import_file("t", s, Runtime(EmbeddedBus(tmp_path / "q.db")), p)
    assert summary.rejected == 2
    text = (s.archive / "x.csv.rejects.csv").read_text(encoding="utf-8")
    assert FNRS[0] not in text and "Åse" not in text and "Kåre" not in text
    assert text.splitlines()[1:] == ["1;dato;BAD_DATE", "2;fnr;MISSING_IDENTIFIER"]


@pytest.mark.parametrize("encoding", ["cp1252", "iso-8859-1"])
def test_legacy_encodings_round_trip_into_the_journal(tmp_path: Path, store_url: str, encoding: str) -> None:
    s = _settings(tmp_path)
    s.ensure_dirs()
    names = ["Åse Ødegård", "Bjørn Æsøy", "Kåre Løvås", "ÆØÅ æøå"]
    lines = [f"{i};{FNRS[i]};K{i};{n};0{i + 1}.02.2026" for i, n in enumerate(names)]
    p = s.directory / f"{encoding}.csv"
    p.write_bytes(("id;fnr;kode;navn;dato\r\n" + "\r\n".join(lines) + "\r\n").encode(encoding))
    bus = EmbeddedBus(tmp_path / "q.db")
    assert import_file("kommune", s, Runtime(bus), p).accepted == 4
    store = Store(store_url)
    try:
        stats = Worker(bus, store, Mapper(lambda _a: s.mapping_options())).run(threading.Event(), until_idle=True)
        descriptions = sorted(orjson.loads(v["content"])["description"] for v in store.all_versions())
    finally:
        store.close()
    assert descriptions == sorted(names)
    assert stats.envelopes == 1 and stats.stage_seconds["map_cpu"] > 0  # the map stage's CPU is measured


def test_check_names_adapter_and_missing_column(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    s.ensure_dirs()
    (s.directory / "sample.csv").write_text("id;fnr;kode;dato\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        build("kommune-x", s, Runtime(None)).check()
    assert "kommune-x" in str(e.value) and "navn" in str(e.value)


def test_polling_adapter_picks_up_and_archives(tmp_path: Path) -> None:
    s = _settings(tmp_path, poll_interval=0.05)
    s.ensure_dirs()
    (s.directory / "a.csv").write_text(f"id;fnr;kode;navn;dato\n1;{FNRS[1]};A;Ås;01.01.2026\n", encoding="utf-8")
    bus = EmbeddedBus(tmp_path / "q.db")
    stop = threading.Event()
    t = threading.Thread(target=build("t", s, Runtime(bus)).run, args=(stop,))
    t.start()
    deadline = time.monotonic() + 10
    while not (s.archive / "a.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    t.join(5)
    assert (s.archive / "a.csv").exists() and len(_embedded_envelopes(bus)) == 1


# ------------------------------------------------------------------ kill -9 and resume on RabbitMQ

N_ROWS = 200_000
DRIVER = """
import sys, orjson
from dataclasses import dataclass
from adapters.csv import Settings
from adapters.csv.importer import import_file
from engine.bus.rabbit import RabbitBus
from engine.config import RabbitBusConfig
a = orjson.loads(sys.argv[1])
@dataclass
class RT:
    bus: object
    keys: object = None
bus = RabbitBus(RabbitBusConfig.model_validate(a["bus"]))
import_file("big", Settings.model_validate(a["settings"]), RT(bus), a["path"])
bus.close()
"""


def _big_file(path: Path) -> None:
    with path.open("w", encoding="cp1252", newline="") as f:
        f.write("id;fnr;kode;navn;dato\r\n")
        for i in range(1, N_ROWS + 1):
            f.write(f"R{i};{FNRS[i % len(FNRS)]};K{i % 7};Åse Ødegård {i};{1 + i % 28:02d}.01.2026\r\n")


def _drain_rabbit(bus: Any) -> list[Envelope]:
    c = bus.consumer(prefetch=2000)
    out: list[Envelope] = []
    try:
        while batch := c.fetch(2000, 1.0):
            out += [d.envelope for d in batch]
            c.ack(batch)
    finally:
        c.close()
    return out


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_kill9_mid_import_then_resume_publishes_every_row_exactly_once(
    tmp_path: Path, rabbit_url: str, amqp_names: dict[str, str]
) -> None:
    from engine.bus.rabbit import RabbitBus

    cfg = {"url": "amqp://guest@127.0.0.1:5672/%2F", **amqp_names}
    bus = RabbitBus(RabbitBusConfig.model_validate(cfg))
    bus.declare()
    s = _settings(tmp_path)
    s.ensure_dirs()
    path = tmp_path / "big.csv"  # outside the drop directory: imported in place, like `enjournal import`
    _big_file(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    args = orjson.dumps({"bus": cfg, "settings": s.model_dump(mode="json"), "path": str(path)}).decode()
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, args], cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    checkpoint = s.state / f"big.{sha}.json"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if checkpoint.exists() and orjson.loads(checkpoint.read_bytes())["next_row"] >= N_ROWS // 4:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert not (s.state / f"big.{sha}.done").exists(), "killed too late: import already complete"
    resumed_at = orjson.loads(checkpoint.read_bytes())["next_row"]
    assert 0 < resumed_at < N_ROWS
    try:
        summary = import_file("big", s, Runtime(bus), path)
        assert summary.complete and summary.rows == N_ROWS and summary.accepted == N_ROWS
        assert summary.chunks == (N_ROWS - resumed_at) // s.batch_rows
        envs = _drain_rabbit(bus)
    finally:
        bus.delete_topology()
        bus.close()
    by_id: dict[str, str] = {}
    for e in envs:
        assert by_id.setdefault(e.id, e.sha256) == e.sha256, "same envelope id, different bytes"
    firsts = sorted({(int(e.attributes["first_row"]), int(e.attributes["rows"])) for e in envs})
    covered = [r for first, n in firsts for r in range(first, first + n)]
    assert covered == list(range(1, N_ROWS + 1))  # every row once: none lost, none twice
    assert len(by_id) == N_ROWS // s.batch_rows
    again = import_file("big", s, Runtime(bus), path)
    assert again.unchanged


def test_bus_down_keeps_file_and_checkpoint_then_resumes(tmp_path: Path) -> None:
    from engine.bus.rabbit import RabbitBus

    s = _settings(tmp_path, publish_attempts=2, batch_rows=2, chunks_per_publish=1)
    s.ensure_dirs()
    p = s.directory / "a.csv"
    p.write_text(
        "id;fnr;kode;navn;dato\n" + "".join(f"{i};{FNRS[i]};A;Ås;01.01.2026\n" for i in range(1, 6)), encoding="utf-8"
    )
    down = RabbitBus(RabbitBusConfig(url="amqp://guest@127.0.0.1:1/%2F"), connect_timeout=0.2)
    with pytest.raises(BusUnavailable):
        import_file("t", s, Runtime(down), p)
    down.close()
    assert p.exists() and not any(s.errors.iterdir()) and not list(s.state.glob("*.done"))
    bus = EmbeddedBus(tmp_path / "q.db")
    summary = import_file("t", s, Runtime(bus), p)
    assert (summary.rows, summary.accepted, summary.chunks) == (5, 5, 3)
    assert (s.archive / "a.csv").exists() and len(_embedded_envelopes(bus)) == 3


def test_cron_tick_imports_every_stable_file(tmp_path: Path) -> None:
    s = _settings(tmp_path, schedule="*/5 * * * *", poll_interval=0.05)
    s.ensure_dirs()
    for name in ("a.csv", "b.CSV"):
        (s.directory / name).write_text(f"id;fnr;kode;navn;dato\n{name};{FNRS[2]};A;Øy;01.01.2026\n", encoding="utf-8")
    (s.directory / "old.csv.rejects.csv").write_text("row;column;reason\n", encoding="utf-8")
    bus = EmbeddedBus(tmp_path / "q.db")
    adapter = build("t", s, Runtime(bus))
    adapter._tick(threading.Event())
    assert sorted(p.name for p in s.archive.iterdir()) == ["a.csv", "b.CSV"]
    assert (s.directory / "old.csv.rejects.csv").exists() and len(_embedded_envelopes(bus)) == 2


def test_unreadable_file_goes_to_error_with_reason(tmp_path: Path) -> None:
    s = _settings(tmp_path, encoding="utf-8")
    s.ensure_dirs()
    p = s.directory / "bad.csv"
    p.write_bytes("id;fnr;kode;navn;dato\n1;x;A;Åse;01.01.2026\n".encode("cp1252"))
    with pytest.raises(PermanentError):
        import_file("t", s, Runtime(EmbeddedBus(tmp_path / "q.db")), p)
    assert (s.errors / "bad.csv").exists()
    assert (s.errors / "bad.csv.reason").read_text().startswith("ENCODING_ERROR")
    p.write_text("id;fnr;kode;dato\n1;x;A;01.01.2026\n", encoding="utf-8")
    with pytest.raises(PermanentError) as e:
        import_file("t", s, Runtime(EmbeddedBus(tmp_path / "q.db")), p)
    assert e.value.code == "MISSING_COLUMN" and "navn" in str(e.value)


def test_stop_then_resume_keeps_reject_report_exact(tmp_path: Path) -> None:
    s = _settings(tmp_path, batch_rows=2, chunks_per_publish=1)
    s.ensure_dirs()
    p = tmp_path / "r.csv"  # outside the drop directory: stays in place
    rows = [f"{i};{FNRS[i % 20]};A;Ås;{'xx' if i % 3 == 0 else '01.01.2026'}" for i in range(1, 31)]
    p.write_text("id;fnr;kode;navn;dato\n" + "\n".join(rows) + "\n", encoding="utf-8")
    bus = EmbeddedBus(tmp_path / "q.db")
    stop = threading.Event()
    first = import_file("t", s, Runtime(bus), p, progress=lambda *_: stop.set(), stop=stop)
    assert not first.complete and 0 < first.rows < 30
    report = tmp_path / "r.csv.rejects.csv"
    with report.open("a", encoding="utf-8") as f:
        f.write("99;dato;JUNK\n")  # as if killed after the report append, before the checkpoint
    done = import_file("t", s, Runtime(bus), p)
    assert done.complete and (done.rows, done.accepted, done.rejected) == (30, 20, 10)
    assert report.read_text(encoding="utf-8").splitlines() == (
        ["row;column;reason"] + [f"{i};dato;BAD_DATE" for i in range(3, 31, 3)]
    )
    envs = _embedded_envelopes(bus)
    assert len(envs) == len({e.id for e in envs}) == 20
    assert sum(int(e.attributes.get("rows", 0)) for e in envs) == 20


def test_many_rejects_close_chunks_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.csv import importer

    monkeypatch.setattr(importer, "MAX_PENDING_REJECTS", 5)
    s = _settings(tmp_path)
    s.ensure_dirs()
    p = tmp_path / "m.csv"
    rows = [f"{i};{FNRS[1]};A;Ås;{'01.01.2026' if i in (1, 20) else ''}" for i in range(1, 21)]
    p.write_text("id;fnr;kode;navn;dato\n" + "\n".join(rows) + "\n", encoding="utf-8")
    bus = EmbeddedBus(tmp_path / "q.db")
    summary = import_file("t", s, Runtime(bus), p)
    assert (summary.accepted, summary.rejected, summary.chunks) == (2, 18, 2)
    chunks = sorted(int(e.attributes["first_row"]) for e in _embedded_envelopes(bus) if "first_row" in e.attributes)
    assert chunks == [1, 20]


def test_rich_import_draws_progress_and_summary(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from adapters.csv.progress import rich_import

    s = _settings(tmp_path)
    p = tmp_path / "x.csv"
    p.write_text(
        "id;fnr;kode;navn;dato\n" + "".join(f"{i};{FNRS[3]};A;Øy;01.01.2026\n" for i in range(50)), encoding="utf-8"
    )
    buf = io.StringIO()
    summary = rich_import("t", s, Runtime(EmbeddedBus(tmp_path / "q.db")), p, console=Console(file=buf, width=100))
    text = buf.getvalue()
    assert summary.accepted == 50 and "accepted" in text and "50" in text and FNRS[3] not in text


def test_logs_carry_no_personal_data(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    s = _settings(tmp_path, encoding="utf-8")
    s.ensure_dirs()
    good = s.directory / "g.csv"
    good.write_text(
        f"id;fnr;kode;navn;dato\n1;{FNRS[4]};A;Åse Ødegård;xx\n2;{FNRS[5]};A;Kåre;01.01.2026\n", encoding="utf-8"
    )
    bad = s.directory / "b.csv"
    bad.write_bytes(f"id;fnr;kode;navn;dato\n1;{FNRS[6]};A;Åse Ødegård;01.01.2026\n".encode("cp1252"))
    adapter = build("t", s, Runtime(EmbeddedBus(tmp_path / "q.db")))
    with capture_logs() as logs:
        for p in (good, bad):
            adapter._handle(p, threading.Event())
    text = repr(logs)
    assert logs and not ids.find_valid_numbers(text) and "Åse" not in text and "Kåre" not in text


@pytest.mark.rabbitmq
def test_files_that_cannot_be_imported_are_archived_and_dead_lettered(
    tmp_path: Path, rabbit_bus: Any, any_store: Store
) -> None:
    """Empty, random bytes, a header without the spec's columns, bytes not in the configured encoding: each
    published once with its bytes, archived raw and dead-lettered with its code (what ops see and replay),
    and moved to error/ with its .reason file."""
    s = _settings(tmp_path, encoding="utf-8", incomplete_grace_seconds=0)
    s.ensure_dirs()
    files = {
        "empty.csv": (b"", "CSV_EMPTY"),
        "random.csv": (random.Random(19).randbytes(512), "ENCODING_ERROR"),
        "columns.csv": (b"id;fnr;kode;dato\n1;x;A;01.01.2026\n", "MISSING_COLUMN"),
        "latin.csv": ("id;fnr;kode;navn;dato\n1;x;A;Åse;01.01.2026\n".encode("cp1252"), "ENCODING_ERROR"),
    }
    a = build("t", s, Runtime(rabbit_bus))
    for name, (content, code) in files.items():
        p = s.directory / name
        p.write_bytes(content)
        assert a._handle(p, threading.Event())
        assert not p.exists() and (s.errors / name).read_bytes() == content
        assert (s.errors / f"{name}.reason").read_text().startswith(code)
    Worker(rabbit_bus, any_store, Mapper(lambda _a: s.mapping_options())).run(threading.Event(), until_idle=True)
    archived = {}
    for d in any_store.dead_letters():
        env = any_store.archived(d["envelope_id"])
        assert env is not None
        archived[env.attributes["file"]] = (env.raw, d["reason_code"])
    assert archived == files
