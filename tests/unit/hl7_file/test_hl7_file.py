"""The HL7 file adapter with the embedded (SQLite) bus: archive after confirm, bad messages, errors."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from adapters.hl7_file import Hl7FileAdapter, Settings, build
from adapters.mllp.client import synthetic_adt
from engine.bus.embedded import EmbeddedBus
from engine.envelope import Envelope
from engine.errors import BusUnavailable
from engine.store import Store
from tests.conftest import FIXTURES, SHARED_CORPUS
from tests.helpers import ack_code
from tests.unit.mllp.helpers import Runtime, drain

HERE = FIXTURES / "hl7_file"
BATCH = HERE / "pyhl7_FHS-BHS_file_2batches_v2.5.hl7"
ORU_BOM = HERE / "fhirconv_ORU-R01_v2.5_lab_bom.hl7"


def make(tmp_path: Path, bus: Any, store: Any, **kw: Any) -> Hl7FileAdapter:
    s = Settings(
        type="hl7-file", directory=tmp_path / "in", stable_seconds=0, poll_interval=0.05, source_system="lab", **kw
    )
    a = build("lab-files", s, Runtime(bus, store))
    a.settings.ensure_dirs()  # run() creates them; check() creates nothing
    a.check()
    return a


def test_batch_file_archived_after_publish(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store)
    f = a.settings.directory / "batch.hl7"
    f.write_bytes(BATCH.read_bytes())
    a.handle(f)
    envs = drain(bus)
    assert [e.attributes for e in envs] == [{"file": "batch.hl7", "index": str(i), "count": "3"} for i in range(3)]
    assert all(e.raw.startswith(b"MSH|") and e.content_type == "application/hl7-v2" for e in envs)
    assert all(e.charset == "ascii" and e.source_system == "lab" and e.dedup_key for e in envs)
    assert not f.exists() and (a.settings.archive / "batch.hl7").read_bytes() == BATCH.read_bytes()
    assert not (a.settings.archive / "batch.hl7.reason").exists()
    assert ack_code(store, envs[0].dedup_key or "") is None  # recorded by the worker, with the records


def test_bad_message_dead_lettered_good_ones_flow(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store)
    bad_msh = b"MSH|^~\\&|LAB|OUS|EPJ|HOSP|2024|||\rPID|1\r"
    content = synthetic_adt(1) + bad_msh + synthetic_adt(2, message_type="ORM") + synthetic_adt(3)
    f = a.settings.directory / "mixed.hl7"
    f.write_bytes(content.replace(b"\r", b"\r\n"))
    a.handle(f)
    envs = sorted(drain(bus), key=lambda e: int(e.attributes["index"]))
    assert [e.rejection.code if e.rejection else "" for e in envs] == [
        "",
        "HL7_BAD_MSH",
        "HL7_UNSUPPORTED_TYPE",
        "",
    ]
    assert [e.dedup_key is not None for e in envs] == [True, False, False, True]
    reason = (a.settings.archive / "mixed.hl7.reason").read_text()
    assert reason.splitlines()[0].startswith("message 1: HL7_BAD_MSH")
    assert reason.splitlines()[1].startswith("message 2: HL7_UNSUPPORTED_TYPE")
    assert "PID" not in reason and "LOADGEN" not in reason


@pytest.mark.parametrize(
    "content",
    [b"", b"// only a comment\r\nPID|1||x\r\n", bytes(range(256)) * 2],
    ids=["empty", "no-msh", "random"],
)
def test_file_without_any_message_is_published_rejected_then_goes_to_error(
    tmp_path: Path, bus: EmbeddedBus, store: Store, content: bytes
) -> None:
    """Published once as one envelope with its bytes and HL7_NO_MSH (archived and dead-lettered by the
    worker), and only then moved to error/ with its .reason file."""
    a = make(tmp_path, bus, store, incomplete_grace_seconds=0)
    f = a.settings.directory / "nothing.hl7"
    f.write_bytes(content)
    a.handle(f)
    [env] = drain(bus)
    assert env.raw == content and env.rejection is not None and env.rejection.code == "HL7_NO_MSH"
    assert env.attributes == {"file": "nothing.hl7", "scope": "file"} and env.content_type == "application/hl7-v2"
    assert not f.exists() and (a.settings.errors / "nothing.hl7").read_bytes() == content
    assert (a.settings.errors / "nothing.hl7.reason").read_text().startswith("HL7_NO_MSH")


def test_a_file_without_msh_over_max_message_bytes_is_published_without_its_bytes(
    tmp_path: Path, bus: EmbeddedBus, store: Store
) -> None:
    a = make(tmp_path, bus, store, incomplete_grace_seconds=0, max_message_bytes=1024)
    f = a.settings.directory / "big.hl7"
    f.write_bytes(b"x" * 5000)
    a.handle(f)
    [env] = drain(bus)
    assert env.raw == b"" and env.rejection is not None and env.rejection.code == "HL7_NO_MSH"
    assert "5000 bytes > max_message_bytes=1024" in env.rejection.text
    assert (a.settings.errors / "big.hl7").stat().st_size == 5000


class _DownBus:
    """A bus that is unavailable."""

    def publish(self, envs: list[Envelope]) -> None:
        raise BusUnavailable("down")

    def publish_async(self, envs: list[Envelope]) -> Any:
        raise BusUnavailable("down")


def test_a_file_without_msh_stays_while_the_bus_is_down(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, _DownBus(), store, incomplete_grace_seconds=0)
    f = a.settings.directory / "empty.hl7"
    f.write_bytes(b"")
    with structlog.testing.capture_logs() as logs:
        a.handle(f)
    assert f.exists() and not any(a.settings.errors.iterdir())
    assert [e["code"] for e in logs if e["event"] == "hl7_file.publish_failed"] == ["BUS_UNAVAILABLE"]
    a.handoff.bus = bus  # the bus is back: the next poll publishes it and moves it
    a.handle(f)
    assert [e.rejection.code for e in drain(bus) if e.rejection] == ["HL7_NO_MSH"]
    assert not f.exists() and (a.settings.errors / "empty.hl7.reason").exists()


def test_a_rejected_file_whose_move_fails_is_published_once(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    """Published and confirmed, then error/ cannot take it: only the move is retried, never the publish."""
    a = make(tmp_path, bus, store, incomplete_grace_seconds=0)
    errors = a.settings.errors
    errors.rmdir()
    errors.write_bytes(b"not a directory")
    f = a.settings.directory / "junk.hl7"
    f.write_bytes(b"junk")
    for _ in range(3):
        a.handle(f)
        time.sleep(0.25)  # past the backoff: the move is tried again each time
    assert f.exists()
    errors.unlink()
    errors.mkdir()
    a.handle(f)
    assert not f.exists() and (errors / "junk.hl7.reason").read_text().startswith("HL7_NO_MSH")
    assert [e.raw for e in drain(bus)] == [b"junk"]


def test_a_file_without_msh_yet_is_given_the_grace(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    """An empty or half-written file (its writer paused longer than stable_seconds) is not rejected before
    it has been unchanged for incomplete_grace_seconds; once its writer finishes it is read whole."""
    a = make(tmp_path, bus, store, incomplete_grace_seconds=0.5)
    empty, half = a.settings.directory / "empty.hl7", a.settings.directory / "half.hl7"
    empty.write_bytes(b"")
    half.write_bytes(synthetic_adt(1)[:2])  # "MS"
    for f in (empty, half):
        a.handle(f)
    assert empty.exists() and half.exists() and not any(a.settings.errors.iterdir()) and drain(bus) == []
    half.write_bytes(synthetic_adt(1))
    a.handle(half)
    assert len(drain(bus)) == 1 and (a.settings.archive / "half.hl7").exists()
    time.sleep(0.6)
    a.handle(empty)
    assert (a.settings.errors / "empty.hl7.reason").read_text().startswith("HL7_NO_MSH")


class _WriterDuringPublish:
    """The bus, and a writer that appends to the file while its messages are being published (after the
    adapter's last look at it before the publish)."""

    def __init__(self, bus: EmbeddedBus, path: Path, more: bytes) -> None:
        self.bus, self.path, self.more = bus, path, more

    def publish_async(self, envs: list[Envelope]) -> Any:
        fut = self.bus.publish_async(envs)
        if self.more:
            with self.path.open("ab") as w:
                w.write(self.more)
            self.more = b""
        return fut

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bus, name)


def test_a_file_changed_while_published_is_never_archived_for_the_old_content(
    tmp_path: Path, bus: EmbeddedBus, store: Store
) -> None:
    """archive/ cannot take the file, and its writer appended a message after the adapter read it: the
    adapter must not remember the new content as published (the next poll would archive a message never
    published); it reads the file again whole once it can."""
    f = tmp_path / "in" / "grow.hl7"
    a = make(tmp_path, _WriterDuringPublish(bus, f, synthetic_adt(2)), store)
    archive = a.settings.archive
    archive.rmdir()
    archive.write_bytes(b"not a directory")
    f.write_bytes(synthetic_adt(1))
    a.handle(f)
    assert [e.dedup_key for e in drain(bus)] == ["HL7|LOADGEN|TEST|MSG00000001"]
    archive.unlink()
    archive.mkdir()
    a.handle(f)
    assert sorted(e.dedup_key or "" for e in drain(bus)) == [
        "HL7|LOADGEN|TEST|MSG00000001",
        "HL7|LOADGEN|TEST|MSG00000002",
    ]
    assert (archive / "grow.hl7").read_bytes() == synthetic_adt(1) + synthetic_adt(2)


def test_archive_on_another_filesystem(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    """os.replace fails with EXDEV across filesystems: the file is copied there instead (the entry itself)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem at /dev/shm")
    other = Path(tempfile.mkdtemp(dir=shm))
    try:
        a = make(tmp_path, bus, store, archive_dir=other / "archive")
        f = a.settings.directory / "one.hl7"
        f.write_bytes(synthetic_adt(1))
        a.handle(f)
        assert len(drain(bus)) == 1 and not f.exists()
        assert (other / "archive" / "one.hl7").read_bytes() == synthetic_adt(1)
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_too_large_file_goes_to_error_unread(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store, max_file_bytes=100)
    f = a.settings.directory / "big.hl7"
    f.write_bytes(synthetic_adt(1) * 3)
    a.handle(f)
    assert drain(bus) == []
    assert (a.settings.errors / "big.hl7.reason").read_text().startswith("HL7_FILE_TOO_LARGE")


def test_bus_unavailable_leaves_the_file(tmp_path: Path, store: Store) -> None:
    broken = EmbeddedBus(tmp_path / "q.db")
    broken.close()
    a = make(tmp_path, broken, store)
    f = a.settings.directory / "one.hl7"
    f.write_bytes(synthetic_adt(1))
    a.handle(f)
    assert f.exists() and not any(a.settings.archive.iterdir()) and not any(a.settings.errors.iterdir())


def test_run_polls_until_stopped(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store)
    (a.settings.directory / "a.hl7").write_bytes(ORU_BOM.read_bytes())
    (a.settings.directory / "b.hl7.part").write_bytes(synthetic_adt(9))  # still being written: ignored
    stop = threading.Event()
    t = threading.Thread(target=a.run, args=(stop,))
    t.start()
    envs: list[Envelope] = drain(bus, expected=1)
    stop.set()
    t.join(10)
    assert len(envs) == 1 and envs[0].raw.startswith(b"MSH|") and envs[0].attributes["file"] == "a.hl7"
    assert (a.settings.archive / "a.hl7").exists() and (a.settings.directory / "b.hl7.part").exists()


@pytest.mark.skipif(not (SHARED_CORPUS / "hl7v2").is_dir(), reason="shared corpus not present")
def test_every_corpus_file_is_handled(tmp_path: Path, bus: EmbeddedBus, store: Store) -> None:
    a = make(tmp_path, bus, store, accepted_types=["ADT", "ORU", "MDM", "ORM", "OUL"])
    files = sorted((SHARED_CORPUS / "hl7v2").glob("*.hl7"))
    for src in files:
        f = a.settings.directory / src.name
        f.write_bytes(src.read_bytes())
        a.handle(f)
    done = {p.name for p in a.settings.archive.iterdir()} | {p.name for p in a.settings.errors.iterdir()}
    assert {f.name for f in files} <= done
