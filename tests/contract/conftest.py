"""Fixtures of the conformance suite (see the package docstring in ``__init__.py``)."""

from __future__ import annotations

from pydantic import BaseModel


# -- What is registered: the one place that asks the registries ------------------------------------
def adapter_settings_classes() -> dict[str, type[BaseModel]]:
    """Every registered adapter kind -> its Settings model (built-ins and entry points)."""
    from engine.config import adapter_settings_classes as registered

    return registered()
