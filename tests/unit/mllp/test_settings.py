"""MLLP settings and ``check()``: unknown keys, TLS material, a port already taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.mllp import Settings, build
from adapters.mllp.tls import TlsSettings, server_context
from engine.errors import ConfigError
from tests.unit.mllp.helpers import Runtime


def test_defaults_and_unknown_keys() -> None:
    s = Settings(type="mllp")
    assert (s.mapping, s.default_charset, s.strict, s.port) == ("hl7v2", "iso-8859-1", False, 2575)
    assert s.accepted_types == ["ADT", "ORU", "MDM"] and s.source_system is None
    with pytest.raises(ValidationError):
        Settings.model_validate({"type": "mllp", "prot": 1})


def test_client_certificates_need_a_ca() -> None:
    with pytest.raises(ValidationError):
        TlsSettings(certfile=Path("server.crt"))
    assert TlsSettings(certfile=Path("s.crt"), require_client_cert=False).cafile is None


def test_unreadable_tls_material_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.crt").write_text("not a certificate")
    with pytest.raises(ConfigError) as err:
        server_context(TlsSettings(certfile=tmp_path / "bad.crt", cafile=tmp_path / "bad.crt"))
    assert "bad.crt" in str(err.value)
    adapter = build(
        "m",
        Settings(type="mllp", port=0, tls={"certfile": tmp_path / "missing.crt", "require_client_cert": False}),
        Runtime(None, None),
    )
    with pytest.raises(ConfigError):
        adapter.check()


def test_port_in_use_is_a_config_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError) as err:
            build("m", Settings(type="mllp", port=port), Runtime(None, None)).check()
    assert f"port {port}" in str(err.value)
    build("m", Settings(type="mllp", port=0), Runtime(None, None)).check()


def test_strict_needs_the_validator() -> None:
    adapter = build("m", Settings(type="mllp", port=0, strict=True), Runtime(None, None))
    assert adapter._strict is not None  # mappings.hl7v2.strict is installed


def test_run_on_a_taken_port_raises_config_error() -> None:
    import threading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        adapter = build("m", Settings(type="mllp", port=s.getsockname()[1]), Runtime(None, None))
        with pytest.raises(ConfigError):
            adapter.run(threading.Event())
