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
    base = {"hl7": {"type": "hl7-file", "directory": str(tmp_path / "h")},
            "mllp": {"type": "mllp"},
            "kith": {"type": "kith-file", "directory": str(tmp_path / "k"), "outbox": str(tmp_path / "o")},
            "csv": {"type": "csv", "directory": str(tmp_path / "c"), "spec": SPEC}}
    return {name: {**cfg, **kinds.get(name, {})} for name, cfg in base.items()}


@pytest.mark.parametrize("bus", [RABBIT, {"kind": "embedded"}])
def test_defaults_fit_both_buses(tmp_path: Path, bus: dict[str, Any]) -> None:
    cfg = parse_config({"bus": bus, "adapters": adapters(tmp_path)})
    assert set(cfg.adapters) == {"hl7", "mllp", "kith", "csv"}


@pytest.mark.parametrize("name,change,field", [
    ("hl7", {"max_message_bytes": 200 * MiB}, "max_message_bytes"),
    ("mllp", {"max_message_bytes": 129 * MiB}, "max_message_bytes"),
    ("kith", {"max_bytes": 140 * MiB}, "max_bytes"),
    ("csv", {"max_line_bytes": 40 * MiB}, "max_line_bytes"),
])
def test_limits_over_the_broker_message_size_are_refused(tmp_path: Path, name: str, change: dict[str, Any],
                                                         field: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"bus": RABBIT, "adapters": adapters(tmp_path, **{name: change})}, "enjournal.yaml")
    msg = str(e.value)
    assert msg.startswith("enjournal.yaml: ") and f"adapter {name!r}, field {field!r}" in msg
    assert "bus.max_message_bytes = 134217728" in msg


def test_the_hl7_file_limit_is_per_message_not_per_file(tmp_path: Path) -> None:
    cfg = parse_config({"bus": RABBIT, "adapters": adapters(tmp_path, hl7={"max_file_bytes": 4096 * MiB})})
    assert cfg.adapters["hl7"].max_file_bytes == 4096 * MiB  # files are split: only a message must fit


def test_kith_limit_is_the_smaller_of_its_two(tmp_path: Path) -> None:
    kith = {"max_bytes": 300 * MiB, "max_file_bytes": 100 * MiB}  # nothing over 100 MiB is ever read
    parse_config({"bus": RABBIT, "adapters": adapters(tmp_path, kith=kith)})


def test_a_smaller_broker_limit_is_honoured(tmp_path: Path) -> None:
    bus = {**RABBIT, "max_message_bytes": 16 * MiB}  # RabbitMQ 4.x's default
    with pytest.raises(ConfigError, match="adapter 'hl7', field 'max_message_bytes'"):
        parse_config({"bus": bus, "adapters": adapters(tmp_path)})
    ok = adapters(tmp_path, hl7={"max_message_bytes": 16 * MiB - ENVELOPE_OVERHEAD},
                  kith={"max_bytes": 8 * MiB}, mllp={"max_message_bytes": 8 * MiB})
    parse_config({"bus": bus, "adapters": ok})


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
    adapter.check()
    (s.directory / "big.xml").write_bytes((FIXTURES / "kith_adapter" / "sarepta_svarrapport-v1.4_biokjemi_ny.xml").read_bytes())
    adapter.handle(s.directory / "big.xml")
    reason = (s.errors / "big.xml.reason").read_text()
    assert reason.startswith("KITH_TOO_LARGE: file of ") and "exceeds the limit of 100" in reason
    assert len(list(s.outbox.iterdir())) == 1  # answered with status 2, once
