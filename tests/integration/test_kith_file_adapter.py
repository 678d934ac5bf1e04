"""The KITH file adapter's loop against real buses (embedded SQLite queue and RabbitMQ).

Properties: a malformed or schema-invalid file is published with a ``reject`` attribute, answered with
AppRec status 2 and parked in error/, and the next file still flows; a file moves and its AppRec is
written only after the bus confirmed; a bus that is down leaves the file in place with no receipt;
every AppRec validates against AppRec-v1.1.xsd; no patient data in the logs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import structlog
from lxml import etree
from pydantic import SecretStr

from adapters.kith_file import Settings, build
from adapters.kith_file.xsd import DEFAULT_SCHEMA_DIR, SchemaSet
from engine.bus import Bus
from engine.bus.embedded import EmbeddedBus
from engine.bus.rabbit import RabbitBus
from engine.config import RabbitBusConfig
from engine.envelope import Envelope
from tests.conftest import FIXTURES

KITH = FIXTURES / "kith_adapter"
MSGHEAD = (KITH / "sarepta_dialogmelding-v1.0_foresporsel.xml").read_bytes()
STANDALONE = (KITH / "sarepta_svarrapport-v1.4_biokjemi_ny.xml").read_bytes()
RECEIPT = (KITH / "sarepta_apprec-v1.0_npr_eksempel.xml").read_bytes()
PATIENT_DATA = ("13116900216", "Danser")  # the official fictitious test person in the fixtures
A = {"a": "http://www.kith.no/xmlstds/apprec/2012-02-15"}


@dataclass
class Runtime:
    bus: Any
    keys: Any = None


@dataclass
class ObservingBus:
    """Forwards to a real bus; records what the drop directory and outbox looked like at each publish."""

    inner: Bus
    directory: Path
    outbox: Path
    seen: list[tuple[str, bool, int]] = field(default_factory=list)

    def publish(self, envelopes: Sequence[Envelope], timeout: float = 30.0) -> None:
        for env in envelopes:
            name = env.attributes["file"]
            self.seen.append((name, (self.directory / name).exists(), len(list(self.outbox.glob("*.xml")))))
        self.inner.publish(envelopes)


def _rabbit_config(url: str, names: dict[str, str], **extra: Any) -> RabbitBusConfig:
    parts = urlsplit(url)
    netloc = f"{parts.username}@{parts.hostname}:{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return RabbitBusConfig(url=bare, password=SecretStr(parts.password or ""), **names, **extra)


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bus]:
    if request.param == "embedded":
        b: Any = EmbeddedBus(tmp_path / "queue.db")
    else:
        b = RabbitBus(_rabbit_config(request.getfixturevalue("rabbit_url"), request.getfixturevalue("amqp_names")))
    b.declare()
    yield b
    if request.param == "rabbitmq":
        b.delete_topology()
    b.close()


@pytest.fixture(scope="module")
def apprec_schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    d = tmp_path_factory.mktemp("apprec-xsd")
    for name in ("AppRec-v1.1.xsd", "kith.xsd"):
        (d / name).write_bytes((DEFAULT_SCHEMA_DIR / name).read_bytes())
    return SchemaSet(d)._schema


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    """Files are dropped whole (write, then rename): a cut document is rejected at once (no grace)."""
    extra.setdefault("incomplete_grace_seconds", 0)
    return Settings(
        directory=tmp_path / "in",
        outbox=tmp_path / "out",
        stable_seconds=0,
        poll_interval=0.05,
        sender_her_id="12345",
        **extra,
    )


def _drop(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (name + ".part")
    tmp.write_bytes(data)
    tmp.rename(directory / name)


def _wait(pred: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.05)


def _run_until_drained(settings: Settings, runtime: Runtime, tweak: Callable[[Any], None] | None = None) -> None:
    adapter = build("kith-test", settings, runtime)
    adapter.settings.ensure_dirs()  # run() creates them; check() creates nothing
    adapter.check()
    if tweak is not None:
        tweak(adapter)
    stop = threading.Event()
    t = threading.Thread(target=adapter.run, args=(stop,), daemon=True)
    t.start()
    try:
        _wait(lambda: not any(p.is_file() for p in settings.directory.iterdir()), "the drop directory to empty")
    finally:
        stop.set()
        t.join(timeout=10)
    assert not t.is_alive()


def _consume_now(bus: Bus) -> list[Envelope]:
    consumer = bus.consumer(prefetch=100)
    try:
        got = consumer.fetch(100, timeout=0.5)
        consumer.ack(got)
    finally:
        consumer.close()
    return [d.envelope for d in got]


def _consume(bus: Bus, count: int) -> list[Envelope]:
    consumer = bus.consumer(prefetch=100)
    got: list[Any] = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < count and time.monotonic() < deadline:
            got += consumer.fetch(count - len(got), timeout=0.5)
        consumer.ack(got)
    finally:
        consumer.close()
    return [d.envelope for d in got]


def _receipts(outbox: Path, schema: etree.XMLSchema) -> list[tuple[str, str, list[str]]]:
    """(original MsgId, status, error codes), sorted; every receipt must validate."""
    out = []
    for p in sorted(outbox.glob("*.xml")):
        root = etree.parse(str(p)).getroot()
        assert schema.validate(root), (p.name, [e.message for e in schema.error_log])
        orig = root.findtext("a:OriginalMsgId/a:Id", namespaces=A)
        assert p.name.startswith(f"apprec-{orig}-")
        out.append((orig, root.find("a:Status", A).get("V"), [e.get("V") for e in root.findall("a:Error", A)]))
    return sorted(out)


@pytest.mark.parametrize("receipt_sync", ["auto", "fsync"])
def test_bad_files_are_answered_and_parked_while_the_next_ones_flow(
    bus: Bus, tmp_path: Path, apprec_schema: etree.XMLSchema, receipt_sync: str
) -> None:
    settings = _settings(tmp_path, validate_xsd=True, receipt_sync=receipt_sync)
    iso = STANDALONE.decode("utf-8").split("?>", 1)[1].encode("iso-8859-1")  # ISO-8859-1, no declaration
    files = {
        "a-broken.xml": MSGHEAD[: len(MSGHEAD) // 2],
        "b-msghead.xml": MSGHEAD,
        "c-invalid.xml": STANDALONE.replace(b"<MsgId>", b"<Bogus/><MsgId>", 1),
        "d-iso.xml": iso,
        "e-receipt.xml": RECEIPT,
    }
    for name, data in files.items():
        _drop(settings.directory, name, data)
    with structlog.testing.capture_logs() as logs:
        _run_until_drained(settings, Runtime(bus))

    envs = {e.attributes["file"]: e for e in _consume(bus, len(files))}
    assert set(envs) == set(files)
    assert all(envs[n].raw == data for n, data in files.items())
    assert str(envs["a-broken.xml"].rejection).startswith("KITH_NOT_WELL_FORMED: ")
    assert str(envs["c-invalid.xml"].rejection).startswith("KITH_XSD_INVALID: line ")
    assert not any(envs[n].rejection for n in ("b-msghead.xml", "d-iso.xml", "e-receipt.xml"))

    assert sorted(p.name for p in settings.archive.iterdir()) == ["b-msghead.xml", "d-iso.xml", "e-receipt.xml"]
    errors = sorted(p.name for p in settings.errors.iterdir())
    assert errors == ["a-broken.xml", "a-broken.xml.reason", "c-invalid.xml", "c-invalid.xml.reason"]
    assert "KITH_XSD_INVALID" in (settings.errors / "c-invalid.xml.reason").read_text()

    # a-broken is half of b-msghead (its MsgId is still found); c-invalid is d-iso's document, broken
    assert _receipts(settings.outbox, apprec_schema) == [
        ("01c59bd0-c6a5-11e6-9598-0800200c9a66", "1", []),  # d-iso
        ("01c59bd0-c6a5-11e6-9598-0800200c9a66", "2", ["T02"]),  # c-invalid
        ("f0f88210-0111-11e8-8f1a-0800200c9a66", "1", []),  # b-msghead
        ("f0f88210-0111-11e8-8f1a-0800200c9a66", "2", ["T01"]),  # a-broken
    ]
    assert len(list(settings.outbox.iterdir())) == 4  # no receipt for a receipt, no .tmp left

    finished = [e for e in logs if e["event"] in ("kith.archived", "kith.rejected")]
    assert len(finished) == 5 and sum("apprec_id" in e for e in finished) == 4  # one line per file
    assert not any(s in repr(logs) for s in PATIENT_DATA)


def test_bus_down_leaves_the_file_and_publish_precedes_move_and_receipt(
    bus: Bus, tmp_path: Path, apprec_schema: etree.XMLSchema
) -> None:
    settings = _settings(tmp_path)
    _drop(settings.directory, "m.xml", MSGHEAD)
    down = RabbitBus(_rabbit_config("amqp://guest:guest@127.0.0.1:1/%2F", {}, confirm_timeout=1.0), connect_timeout=0.5)
    runtime = Runtime(down)
    adapter = build("kith-test", settings, runtime)
    adapter.settings.ensure_dirs()  # run() creates them; check() creates nothing
    settings.outbox.mkdir()
    adapter.check()
    try:
        adapter.handle(settings.directory / "m.xml")
    finally:
        down.close()
    assert (settings.directory / "m.xml").read_bytes() == MSGHEAD
    assert list(settings.outbox.iterdir()) == [] and list(settings.archive.iterdir()) == []

    observing = ObservingBus(bus, settings.directory, settings.outbox)
    runtime.bus = observing
    _run_until_drained(settings, runtime)
    assert observing.seen == [("m.xml", True, 0)]  # at publish time: file still in place, no receipt yet
    assert [e.attributes["file"] for e in _consume(bus, 1)] == ["m.xml"]
    assert (settings.archive / "m.xml").read_bytes() == MSGHEAD
    assert _receipts(settings.outbox, apprec_schema) == [("f0f88210-0111-11e8-8f1a-0800200c9a66", "1", [])]


def test_batches_finish_while_the_next_is_published_each_file_once(
    bus: Bus, tmp_path: Path, apprec_schema: etree.XMLSchema
) -> None:
    """The run loop finishes one batch (receipts, moves) while it publishes the next. With a slow disk
    (receipts take 0.3 s) the loop lists the files of the batch being finished again: none may be
    published twice; every file gets exactly one receipt and is archived once."""
    settings = _settings(tmp_path, max_batch=7)
    for i in range(40):
        _drop(settings.directory, f"m{i:03d}.xml", STANDALONE)

    def slow_disk(adapter: Any) -> None:
        write_all = adapter._writer.write_all

        def slow(items: Any) -> Any:
            time.sleep(0.3)
            return write_all(items)

        adapter._writer.write_all = slow

    _run_until_drained(settings, Runtime(bus), slow_disk)

    envs = _consume(bus, 40)
    assert sorted(e.attributes["file"] for e in envs) == [f"m{i:03d}.xml" for i in range(40)]
    assert _consume_now(bus) == []  # a second publish of any file would show here
    assert sorted(p.name for p in settings.archive.iterdir()) == [f"m{i:03d}.xml" for i in range(40)]
    receipts = list(settings.outbox.glob("*.xml"))
    assert len(receipts) == 40 and not list(settings.outbox.glob("*.tmp"))
    assert all(apprec_schema.validate(etree.parse(str(p)).getroot()) for p in receipts[:5])


@dataclass
class WriterDuringPublish:
    """Forwards to a real bus; while the first batch is published, the sender rewrites one of its files."""

    inner: Bus
    path: Path
    data: bytes

    def publish(self, envelopes: Sequence[Envelope], timeout: float = 30.0) -> None:
        self.inner.publish(envelopes)
        if self.data:
            self.path.write_bytes(self.data)
            self.data = b""


def test_a_file_rewritten_after_it_was_read_is_read_again_not_archived_as_published(tmp_path: Path, bus: Bus) -> None:
    settings = _settings(tmp_path)
    first, second = STANDALONE, STANDALONE.replace(b"<MsgId>", b"<MsgId>v2-", 1)
    _drop(settings.directory, "svar.xml", first)
    adapter = build("kith-test", settings, Runtime(WriterDuringPublish(bus, settings.directory / "svar.xml", second)))
    adapter.settings.ensure_dirs()  # run() creates them; check() creates nothing
    adapter.check()
    adapter.handle(settings.directory / "svar.xml")
    assert (settings.directory / "svar.xml").read_bytes() == second  # not moved: not what was published
    adapter.handle(settings.directory / "svar.xml")
    assert (settings.archive / "svar.xml").read_bytes() == second
    assert sorted(e.raw == second for e in _consume_now(bus)) == [False, True]  # both versions published
