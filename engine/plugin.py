"""What the engine needs of a plugin: an adapter kind's settings and a mapping function.

An adapter kind is a module (or package) with ``Settings``, a pydantic model meeting :class:`AdapterSettings`
(``type: Literal["<kind>"]``, ``extra="forbid"``), and ``build(name, settings, runtime)`` returning an
:class:`adapters.base.Adapter`. A mapping is a function meeting :class:`MapFn`. :mod:`engine.registry` finds
both by name and checks them when it loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from engine.model import MapContext, MappingResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from adapters.base import Adapter, AdapterRuntime


class AdapterSettings(Protocol):
    """The part of an adapter's settings the engine reads (the rest is the adapter's own)."""

    @property
    def type(self) -> str:
        """The adapter kind, the config's discriminator (``hl7-file``)."""

    @property
    def mapping(self) -> str:
        """The name of the mapping the worker runs on this adapter's envelopes (:mod:`engine.registry`)."""

    @property
    def model_fields_set(self) -> set[str]:
        """The fields the config file set (pydantic), as opposed to defaults."""

    def mapping_options(self) -> dict[str, Any]:
        """``ctx.options`` for the mapping of this adapter's envelopes (JSON-able; empty when it needs none)."""

    def published_limits(self) -> dict[str, int]:
        """``{field: largest raw bytes of one envelope}`` (:mod:`engine.limits`)."""


@runtime_checkable
class InboxSettings(Protocol):
    """Settings of an adapter that reads files from a directory (the file adapters): ``run --until-idle`` and
    the demo look at what is still in it."""

    @property
    def directory(self) -> Path:
        """The inbox."""

    @property
    def pattern(self) -> str:
        """The glob of the files it takes."""


#: the members a Settings class must have (checked when the registry loads it)
SETTINGS_METHODS = ("mapping_options", "published_limits")
SETTINGS_FIELDS = ("type", "mapping")


class MapFn(Protocol):
    """A mapping: parse ``raw`` and map it, purely (no I/O, no clock, no logging of content). Bad input raises
    an :class:`engine.errors.PermanentError` subclass with a stable code."""

    def __call__(self, raw: bytes, ctx: MapContext, /) -> MappingResult: ...


if TYPE_CHECKING:
    #: an adapter kind's ``build``
    BuildFn = Callable[[str, AdapterSettings, AdapterRuntime], Adapter]
