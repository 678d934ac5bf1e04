"""The registry: built-in adapter kinds and mappings, aliases, entry points, "did you mean", checks at load."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from engine import registry
from engine.config import config_model, parse_config
from engine.errors import ConfigError
from engine.model import MapContext, MappingResult


# -- a third-party adapter kind and mapping, as an entry point would name them ------------------------
class FakeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["fake-drop"]
    mapping: str = "fake-map"

    def mapping_options(self) -> dict[str, Any]:
        return {}

    def published_limits(self) -> dict[str, int]:
        return {}


class FakeAdapter:
    def __init__(self, name: str) -> None:
        self.name = name

    def check(self) -> None:
        return None

    def run(self, stop: threading.Event) -> None:
        return None


class FakeKind:
    Settings = FakeSettings

    @staticmethod
    def build(name: str, settings: FakeSettings, runtime: object) -> FakeAdapter:
        return FakeAdapter(name)


class LackingKind:
    class Settings(BaseModel):
        type: Literal["lacking"]

    build = FakeKind.build


def fake_map(raw: bytes, ctx: MapContext, /) -> MappingResult:
    raise NotImplementedError


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    here = __name__
    eps = {
        registry.ADAPTER_GROUP: [
            EntryPoint("fake-drop", f"{here}:FakeKind", registry.ADAPTER_GROUP),
            EntryPoint("lacking", f"{here}:LackingKind", registry.ADAPTER_GROUP),
            EntryPoint("mllp", f"{here}:FakeKind", registry.ADAPTER_GROUP),  # a built-in name: ignored
        ],
        registry.MAPPING_GROUP: [EntryPoint("fake-map", f"{here}:fake_map", registry.MAPPING_GROUP)],
    }
    monkeypatch.setattr(registry, "entry_points", lambda group: eps.get(group, []))
    config_model.cache_clear()
    yield
    config_model.cache_clear()


# -- built-ins ---------------------------------------------------------------------------------------
def test_built_ins_come_first_and_load() -> None:
    kinds = registry.adapters()
    assert [p.name for p in kinds][:4] == ["hl7-file", "mllp", "kith-file", "csv"]
    for plugin in kinds:
        assert plugin.origin == "built-in" or plugin.name not in registry.BUILTIN_ADAPTERS
        assert "type" in plugin.settings.model_fields
    maps = registry.mappings()
    assert [p.name for p in maps][:3] == ["hl7v2", "kith", "csv"]
    assert all(callable(p.map_fn) for p in maps)
    assert registry.mapping("hl7v2").module == "mappings.hl7v2"


def test_listing_imports_nothing() -> None:
    plugin = registry.adapters()[0]
    assert "_module" not in plugin.__dict__  # loaded only when asked for


def test_aliases_stand_for_one_name() -> None:
    assert registry.adapter("hl7file").name == "hl7-file"
    assert registry.adapter("kith_file").name == "kith-file"
    assert registry.mapping("hl7").name == "hl7v2"
    assert "hl7" in registry.mapping("hl7v2").aliases
    for alias, name in {**registry.ADAPTER_ALIASES, **registry.MAPPING_ALIASES}.items():
        assert alias not in registry.BUILTIN_ADAPTERS and alias not in registry.BUILTIN_MAPPINGS, (alias, name)


@pytest.mark.parametrize(
    ("call", "typo", "meant"),
    [
        (registry.adapter, "hl7-fil", "hl7-file"),
        (registry.adapter, "mlp", "mllp"),
        (registry.mapping, "hl7v3", "hl7v2"),
    ],
)
def test_a_typo_is_answered_with_did_you_mean(call: Any, typo: str, meant: str) -> None:
    with pytest.raises(ConfigError, match=f"did you mean '{meant}'"):
        call(typo)


def test_nothing_close_lists_the_known_names() -> None:
    with pytest.raises(ConfigError, match=r"known: csv, hl7-file, kith-file, mllp"):
        registry.adapter("ftp")


def test_a_module_path_mapping_is_imported_when_named() -> None:
    assert registry.mapping("tests.e2e_mapping:map_message").origin == "module path"
    with pytest.raises(ConfigError, match="cannot import 'tests.no_such_module'"):
        registry.mapping("tests.no_such_module:map_message")
    with pytest.raises(ConfigError, match="has no 'nothing_here'"):
        registry.mapping("tests.e2e_mapping:nothing_here")


# -- entry points ------------------------------------------------------------------------------------
def test_entry_points_add_kinds_and_mappings_after_the_built_ins(plugins: None) -> None:
    names = [p.name for p in registry.adapters()]
    assert names == ["hl7-file", "mllp", "kith-file", "csv", "fake-drop", "lacking"]
    assert registry.adapter("fake-drop").origin == "entry point"
    assert registry.adapter("mllp").origin == "built-in"
    assert registry.mapping("fake-map").map_fn is fake_map
    assert registry.adapter("fake-drop").build("x", FakeSettings(type="fake-drop"), object()).name == "x"


def test_a_settings_class_without_the_contract_is_refused_by_name(plugins: None) -> None:
    with pytest.raises(ConfigError, match=r"'lacking'.*lack mapping, mapping_options\(\), published_limits\(\)"):
        _ = registry.adapter("lacking").settings


# -- the config ----------------------------------------------------------------------------------------
def test_config_names_adapter_and_field_for_an_unknown_type() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"adapters": {"lab": {"type": "hl7-fil", "directory": "in"}}}, "c.yaml")
    assert (
        str(info.value)
        == "c.yaml: adapter 'lab', field 'type': unknown adapter type 'hl7-fil' (did you mean 'hl7-file'?)"
    )


def test_config_names_adapter_and_field_for_an_unknown_mapping() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"adapters": {"lab": {"type": "hl7-file", "directory": "in", "mapping": "hl7v3"}}}, "c.yaml")
    assert str(info.value) == "c.yaml: adapter 'lab', field 'mapping': unknown mapping 'hl7v3' (did you mean 'hl7v2'?)"
    with pytest.raises(ConfigError, match="adapter 'lab', field 'mapping': mapping 'nope:map'"):
        parse_config({"adapters": {"lab": {"type": "hl7-file", "directory": "in", "mapping": "nope:map"}}})


def test_config_keeps_the_name_an_alias_stands_for() -> None:
    cfg = parse_config({"adapters": {"lab": {"type": "hl7file", "directory": "in", "mapping": "hl7"}}})
    assert cfg.adapters["lab"].type == "hl7-file" and cfg.adapters["lab"].mapping == "hl7v2"


def test_config_takes_an_entry_point_kind(plugins: None) -> None:
    cfg = parse_config({"adapters": {"x": {"type": "fake-drop"}}})
    assert isinstance(cfg.adapters["x"], FakeSettings) and cfg.adapters["x"].mapping == "fake-map"


def test_only_the_plugins_the_config_names_are_loaded(plugins: None) -> None:
    assert parse_config({"adapters": {"x": {"type": "fake-drop"}}}).adapters["x"].type == "fake-drop"
    with pytest.raises(ConfigError, match="'lacking'.*its Settings lack"):
        parse_config({"adapters": {"y": {"type": "lacking"}}})
