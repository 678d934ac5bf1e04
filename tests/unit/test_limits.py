"""Start-up refuses adapter limits the bus cannot carry (engine.limits), naming the adapter and the field."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.kith_file import KithFileAdapter, Settings, build
from engine.config import parse_config
from engine.errors import ConfigError
from engine.limits import EMBEDDED_MAX_MESSAGE_BYTES, ENVELOPE_OVERHEAD
from tests.conftest import FIXTURES

MiB = 1024 * 1024
RABBIT = {"kind": "rabbitmq", "url": "amqp://guest@127.0.0.1:5672/%2F"}
SPEC = {"kind": "person", "key": ["id"], "subject": {"national": "fnr", "scope": "k"}, "event_time": {"column": "t"}}


def adapters(tmp_path: Path, **kinds: dict[str, Any]) -> dict[str, Any]:
    base = {
        "hl7": {"type": "hl7-file", "directory": str(tmp_path / "h")},
        "mllp": {"type": "mllp"},
        "kith": {"type": "kith-file", "directory": str(tmp_path / "k"), "outbox": str(tmp_path / "o")},
        "csv": {"type": "csv", "directory": str(tmp_path / "c"), "spec": SPEC},
    }
    return {name: {**cfg, **kinds.get(name, {})} for name, cfg in base.items()}


@pytest.mark.parametrize("bus", [RABBIT, {"kind": "embedded"}])
def test_defaults_fit_both_buses(tmp_path: Path, bus: dict[str, Any]) -> None:
    cfg = parse_config({"bus": bus, "adapters": adapters(tmp_path)})
    assert set(cfg.adapters) == {"hl7", "mllp", "kith", "csv"}


@pytest.mark.parametrize(
    "name,change,field",
    [
        ("hl7", {"max_message_bytes": 200 * MiB}, "max_message_bytes"),
        ("hl7", {"max_message_bytes": 16 * MiB}, "max_message_bytes"),  # explicit: the metadata needs room too
        ("mllp", {"max_message_bytes": 129 * MiB}, "max_message_bytes"),
        ("kith", {"max_bytes": 140 * MiB}, "max_bytes"),
        ("kith", {"max_file_bytes": 20 * MiB, "max_bytes": 30 * MiB}, "max_file_bytes"),
        ("csv", {"max_line_bytes": 4 * MiB}, "max_line_bytes"),
    ],
)
def test_limits_over_the_broker_message_size_are_refused(
    tmp_path: Path, name: str, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"bus": RABBIT, "adapters": adapters(tmp_path, **{name: change})}, "enjournal.yaml")
    msg = str(e.value)
    assert msg.startswith("enjournal.yaml: ") and f"adapter {name!r}, field {field!r}" in msg
    assert "bus.max_message_bytes = 16777216" in msg


def test_the_hl7_file_limit_is_per_message_not_per_file(tmp_path: Path) -> None:
    cfg = parse_config({"bus": RABBIT, "adapters": adapters(tmp_path, hl7={"max_file_bytes": 4096 * MiB})})
    assert cfg.adapters["hl7"].max_file_bytes == 4096 * MiB  # files are split: only a message must fit


def test_kith_limit_is_the_smaller_of_its_two(tmp_path: Path) -> None:
    kith = {"max_bytes": 300 * MiB, "max_file_bytes": 100 * MiB}  # nothing over 100 MiB is ever read
    parse_config({"bus": {**RABBIT, "max_message_bytes": 128 * MiB}, "adapters": adapters(tmp_path, kith=kith)})


@pytest.mark.parametrize("bus_limit", [16 * MiB, 4 * MiB])
def test_unset_limits_follow_the_bus_and_set_ones_are_kept(tmp_path: Path, bus_limit: int) -> None:
    bus = {**RABBIT, "max_message_bytes": bus_limit}
    files = {k: v for k, v in adapters(tmp_path).items() if k != "csv"}  # a CSV chunk needs more than 4 MiB
    cfg = parse_config({"bus": bus, "adapters": files})
    room = bus_limit - ENVELOPE_OVERHEAD
    assert cfg.adapters["hl7"].max_message_bytes == room and cfg.adapters["mllp"].max_message_bytes == room
    assert cfg.adapters["kith"].max_bytes == room and cfg.adapters["kith"].max_file_bytes == 256 * MiB
    ok = adapters(tmp_path, hl7={"max_message_bytes": room}, kith={"max_bytes": MiB}, mllp={"max_message_bytes": MiB})
    cfg = parse_config({"bus": bus, "adapters": {k: v for k, v in ok.items() if k != "csv"}})
    assert (cfg.adapters["hl7"].max_message_bytes, cfg.adapters["kith"].max_bytes) == (room, MiB)


def test_defaults_are_kept_where_the_bus_carries_them(tmp_path: Path) -> None:
    cfg = parse_config({"bus": {**RABBIT, "max_message_bytes": 128 * MiB}, "adapters": adapters(tmp_path)})
    assert cfg.adapters["hl7"].max_message_bytes == 64 * MiB and cfg.adapters["mllp"].max_message_bytes == 16 * MiB
    assert cfg.adapters["kith"].max_bytes == 64 * MiB


def test_the_default_bus_limit_is_rabbitmq_4s(tmp_path: Path) -> None:
    cfg = parse_config({"bus": RABBIT, "adapters": adapters(tmp_path)})
    assert cfg.bus.max_message_bytes == 16 * MiB
    assert cfg.adapters["hl7"].max_message_bytes == 16 * MiB - ENVELOPE_OVERHEAD
    again = parse_config(cfg.model_dump(mode="json"))  # what a worker process parses: the same limits
    assert again.adapters["hl7"].max_message_bytes == cfg.adapters["hl7"].max_message_bytes


def test_embedded_bus_has_its_own_limit(tmp_path: Path) -> None:
    too_big = {"max_message_bytes": EMBEDDED_MAX_MESSAGE_BYTES}
    with pytest.raises(ConfigError, match="the embedded bus's limit"):
        parse_config({"adapters": adapters(tmp_path, hl7=too_big)})


def test_frames_must_fit_too() -> None:
    with pytest.raises(ConfigError, match="bus.frame_bytes"):
        parse_config({"bus": {**RABBIT, "frame_bytes": 200 * MiB}})


def test_kith_file_over_max_bytes_is_never_read_nor_published(tmp_path: Path) -> None:
    s = Settings(directory=tmp_path / "in", outbox=tmp_path / "out", max_bytes=100, sender_her_id="12345")
    adapter: KithFileAdapter = build("k", s, SimpleNamespace(bus=None))  # the bus is never touched
    adapter.settings.ensure_dirs()  # run() creates them; check() creates nothing
    adapter.check()
    (s.directory / "big.xml").write_bytes(
        (FIXTURES / "kith_adapter" / "sarepta_svarrapport-v1.4_biokjemi_ny.xml").read_bytes()
    )
    adapter.handle(s.directory / "big.xml")
    reason = (s.errors / "big.xml.reason").read_text()
    assert reason.startswith("KITH_TOO_LARGE: file of ") and "exceeds the limit of 100" in reason
    assert len(list(s.outbox.iterdir())) == 1  # answered with status 2, once
