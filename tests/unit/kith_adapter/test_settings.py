"""The adapter's config model and the paths that never reach the bus."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from adapters.kith_file import KithFileAdapter, Settings, build
from engine.config import parse_config
from engine.errors import ConfigError
from tests.unit.kith_adapter.conftest import STANDALONE

A = {"a": "http://www.kith.no/xmlstds/apprec/2012-02-15"}


def test_config_file_selects_the_kith_adapter(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "adapters": {
                "kith-in": {
                    "type": "kith-file",
                    "directory": str(tmp_path / "in"),
                    "outbox": str(tmp_path / "out"),
                    "validate_xsd": True,
                    "sender_her_id": "12345",
                }
            }
        }
    )
    s = cfg.adapters["kith-in"]
    assert isinstance(s, Settings) and s.mapping == "kith" and s.validate_xsd and s.xsd_dir is None


def test_unknown_key_names_the_adapter_and_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="adapter 'kith-in', field 'validate'"):
        parse_config(
            {
                "adapters": {
                    "kith-in": {
                        "type": "kith-file",
                        "directory": str(tmp_path),
                        "outbox": str(tmp_path / "out"),
                        "validate": True,
                    }
                }
            }
        )


def test_outbox_must_not_be_the_drop_directory(tmp_path: Path) -> None:
    adapter = build("k", Settings(directory=tmp_path, outbox=tmp_path), SimpleNamespace(bus=None))
    with pytest.raises(ConfigError, match="outbox"):
        adapter.check()


def test_check_compiles_the_schemas_once_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    adapter = build(
        "k", Settings(directory=tmp_path / "in", outbox=tmp_path / "out", validate_xsd=True), SimpleNamespace(bus=None)
    )
    adapter.check()
    assert adapter.schemas is adapter.schemas is not None
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["in"]  # archive/, error/ and the outbox: made by run()


def test_bad_schema_folder_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    s = Settings(directory=tmp_path / "in", outbox=tmp_path / "out", validate_xsd=True, xsd_dir=tmp_path / "none")
    with pytest.raises(ConfigError, match="XSD folder"):
        build("k", s, SimpleNamespace(bus=None)).check()


def test_file_over_max_file_bytes_is_answered_and_parked_without_reading(tmp_path: Path) -> None:
    s = Settings(
        directory=tmp_path / "in",
        outbox=tmp_path / "out",
        max_file_bytes=100,
        sender_her_id="12345",
        sender_name="Enjournal",
    )
    adapter: KithFileAdapter = build("k", s, SimpleNamespace(bus=None))  # the bus is never touched
    adapter.settings.ensure_dirs()  # run() creates them; check() creates nothing
    adapter.check()
    (s.directory / "big.xml").write_bytes(STANDALONE.read_bytes())
    adapter.handle(s.directory / "big.xml")
    assert (s.errors / "big.xml").is_file()
    assert (s.errors / "big.xml.reason").read_text().startswith("KITH_TOO_LARGE")
    [receipt] = list(s.outbox.iterdir())
    assert receipt.name.startswith("apprec-big-")
    root = etree.parse(str(receipt)).getroot()
    assert root.find("a:Status", A).get("V") == "2" and root.find("a:Error", A).get("V") == "T99"
    assert root.findtext("a:Sender/a:HCP/a:Inst/a:Id", namespaces=A) == "12345"


def test_vanished_file_is_ignored(tmp_path: Path) -> None:
    s = Settings(directory=tmp_path / "in", outbox=tmp_path / "out")
    build("k", s, SimpleNamespace(bus=None)).handle(s.directory / "gone.xml")
