"""The registry of adapter kinds and mappings: names -> where they live, loaded only when used.

Built-in names map to dotted paths (:data:`BUILTIN_ADAPTERS`, :data:`BUILTIN_MAPPINGS`), each with a few
aliases that cannot mean anything else (:data:`ADAPTER_ALIASES`, :data:`MAPPING_ALIASES`; the config keeps
the name the alias stands for). A third party adds either through an entry point of its distribution::

    [project.entry-points."enjournal.adapters"]
    ftp-file = "enjournal_ftp"                # a module with Settings and build

    [project.entry-points."enjournal.mappings"]
    edifact = "enjournal_edifact:map_message"  # a function meeting engine.plugin.MapFn

A built-in name wins over an entry point of the same name. A mapping may also be named by its path,
``package.module:function``, which is imported when the config is loaded. An unknown name is a
:class:`engine.errors.ConfigError` with the closest known name ("did you mean").

Nothing here is imported before it is asked for: listing the plugins (:func:`adapters`, :func:`mappings`)
imports nothing, :attr:`AdapterPlugin.settings` imports that adapter's module, :attr:`MappingPlugin.map_fn`
that mapping's module.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Literal, TypeGuard

from pydantic import BaseModel

from engine.errors import ConfigError
from engine.plugin import SETTINGS_FIELDS, SETTINGS_METHODS, MapFn

if TYPE_CHECKING:
    from adapters.base import Adapter, AdapterRuntime
    from engine.plugin import AdapterSettings, BuildFn

ADAPTER_GROUP = "enjournal.adapters"
MAPPING_GROUP = "enjournal.mappings"

#: built-in adapter kinds -> the module holding ``Settings`` and ``build``
BUILTIN_ADAPTERS: dict[str, str] = {
    "hl7-file": "adapters.hl7_file",
    "mllp": "adapters.mllp",
    "kith-file": "adapters.kith_file",
    "csv": "adapters.csv",
}
#: other spellings of a built-in adapter kind (the module's own name, the kind without its dash)
ADAPTER_ALIASES: dict[str, str] = {
    "hl7file": "hl7-file",
    "hl7_file": "hl7-file",
    "kithfile": "kith-file",
    "kith_file": "kith-file",
    "csv-file": "csv",
    "csv_file": "csv",
}
#: built-in mappings -> ``module:function``
BUILTIN_MAPPINGS: dict[str, str] = {
    "hl7v2": "mappings.hl7v2:map_message",
    "kith": "mappings.kith:map_message",
    "csv": "mappings.csv_decl:map_message",
}
#: other spellings of a built-in mapping
MAPPING_ALIASES: dict[str, str] = {
    "hl7": "hl7v2",
    "hl7-v2": "hl7v2",
    "csv_decl": "csv",
}

Origin = Literal["built-in", "entry point", "module path"]


@dataclass(frozen=True)
class AdapterPlugin:
    """One adapter kind: the name the config's ``type:`` gives, its other names, and the module it lives in."""

    name: str
    target: str
    aliases: tuple[str, ...] = ()
    origin: Origin = "built-in"

    @cached_property
    def _module(self) -> tuple[type[BaseModel], BuildFn]:
        what = f"adapter type {self.name!r} ({self.target})"
        obj = _load(self.target, what)
        build = getattr(obj, "build", None)
        if not _is_build(build):
            raise ConfigError(f"{what} has no build(name, settings, runtime)")
        return _settings_class(getattr(obj, "Settings", None), what), build

    @property
    def settings(self) -> type[BaseModel]:
        """The adapter's settings model (imports the module; meets :class:`engine.plugin.AdapterSettings`)."""
        return self._module[0]

    def build(self, name: str, settings: AdapterSettings, runtime: AdapterRuntime) -> Adapter:
        """The adapter instance ``name`` of this kind (nothing starts before its ``run``)."""
        return self._module[1](name, settings, runtime)


@dataclass(frozen=True)
class MappingPlugin:
    """One mapping: its name (the config's ``mapping:``), its other names, and its ``module:function``."""

    name: str
    target: str
    aliases: tuple[str, ...] = ()
    origin: Origin = "built-in"

    @property
    def module(self) -> str:
        """The module the function lives in (imported ahead of the first message: :mod:`engine.heap`)."""
        return self.target.partition(":")[0]

    @cached_property
    def map_fn(self) -> MapFn:
        """The mapping function (imports its module)."""
        fn = _load(self.target, f"mapping {self.name!r}")
        if not _is_map_fn(fn):
            raise ConfigError(f"mapping {self.name!r}: {self.target} is not a function")
        return fn


def adapters() -> list[AdapterPlugin]:
    """Every adapter kind: the built-in ones first, then those of the ``enjournal.adapters`` entry points."""
    return [*_builtin_adapters(), *_entry_point_adapters()]


def mappings() -> list[MappingPlugin]:
    """Every named mapping: the built-in ones first, then those of the ``enjournal.mappings`` entry points."""
    return [*_builtin_mappings(), *_entry_point_mappings()]


def adapter(kind: str) -> AdapterPlugin:
    """The adapter kind called ``kind`` (a name or an alias); a ConfigError with "did you mean" if none is."""
    kind = ADAPTER_ALIASES.get(kind, kind)
    for plugin in _builtin_adapters() if kind in BUILTIN_ADAPTERS else adapters():
        if plugin.name == kind:
            return plugin
    raise ConfigError(f"unknown adapter type {kind!r}{_hint(kind, adapters())}")


def mapping(name: str) -> MappingPlugin:
    """The mapping called ``name`` (a name, an alias, or ``module:function``, which is imported now); a
    ConfigError with "did you mean" if there is none."""
    if ":" in name:
        plugin = MappingPlugin(name=name, target=name, origin="module path")
        _ = plugin.map_fn
        return plugin
    name = MAPPING_ALIASES.get(name, name)
    for plugin in _builtin_mappings() if name in BUILTIN_MAPPINGS else mappings():
        if plugin.name == name:
            return plugin
    raise ConfigError(f"unknown mapping {name!r}{_hint(name, mappings())}")


def resolve_mapping(name: str) -> MapFn:
    """The mapping function called ``name`` (see :func:`mapping`)."""
    return mapping(name).map_fn


def mapping_name(name: str) -> str:
    """The name an alias of a built-in mapping stands for (any other text unchanged)."""
    return MAPPING_ALIASES.get(name, name)


# -- internals ---------------------------------------------------------------------------------------
def _aliases(of: str, table: dict[str, str]) -> tuple[str, ...]:
    return tuple(alias for alias, name in table.items() if name == of)


def _builtin_adapters() -> list[AdapterPlugin]:
    return [AdapterPlugin(n, t, _aliases(n, ADAPTER_ALIASES)) for n, t in BUILTIN_ADAPTERS.items()]


def _builtin_mappings() -> list[MappingPlugin]:
    return [MappingPlugin(n, t, _aliases(n, MAPPING_ALIASES)) for n, t in BUILTIN_MAPPINGS.items()]


def _entry_point_adapters() -> list[AdapterPlugin]:
    taken = {*BUILTIN_ADAPTERS, *ADAPTER_ALIASES}
    found = {ep.name: ep.value for ep in entry_points(group=ADAPTER_GROUP) if ep.name not in taken}
    return [AdapterPlugin(n, t, origin="entry point") for n, t in found.items()]


def _entry_point_mappings() -> list[MappingPlugin]:
    taken = {*BUILTIN_MAPPINGS, *MAPPING_ALIASES}
    found = {ep.name: ep.value for ep in entry_points(group=MAPPING_GROUP) if ep.name not in taken}
    return [MappingPlugin(n, t, origin="entry point") for n, t in found.items()]


def _hint(name: str, plugins: Iterable[AdapterPlugin | MappingPlugin]) -> str:
    """`` (did you mean 'x'?)`` for the closest name or alias, else the known names."""
    canonical = {alias: p.name for p in plugins for alias in (p.name, *p.aliases)}
    close = difflib.get_close_matches(name, canonical, n=1)
    if close:
        return f" (did you mean {canonical[close[0]]!r}?)"
    return f" (known: {', '.join(sorted(set(canonical.values())))})"


def _load(target: str, what: str) -> object:
    """The object at ``module`` or ``module:attr.attr``; a ConfigError naming ``what`` when it is not there."""
    module, _, attrs = target.partition(":")
    if not module:
        raise ConfigError(f"{what}: {target!r} names no module")
    try:
        obj: object = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"{what}: cannot import {module!r} ({type(exc).__name__})") from None
    for attr in filter(None, attrs.split(".")):
        if not hasattr(obj, attr):
            raise ConfigError(f"{what}: {module!r} has no {attrs!r}")
        obj = getattr(obj, attr)
    return obj


def _settings_class(settings: object, what: str) -> type[BaseModel]:
    """``settings`` when it is a pydantic model meeting :class:`engine.plugin.AdapterSettings`."""
    if not (isinstance(settings, type) and issubclass(settings, BaseModel)):
        raise ConfigError(f"{what}: its Settings are missing or not a pydantic model")
    lacks = [f for f in SETTINGS_FIELDS if f not in settings.model_fields]
    lacks += [f"{m}()" for m in SETTINGS_METHODS if not callable(getattr(settings, m, None))]
    if lacks:
        raise ConfigError(f"{what}: its Settings lack {', '.join(lacks)}")
    return settings


def _is_build(obj: object) -> TypeGuard[BuildFn]:
    return callable(obj)


def _is_map_fn(obj: object) -> TypeGuard[MapFn]:
    return callable(obj)
