"""Supervision of an engine's services (adapters, worker threads, worker processes).

:class:`Health` is what ``/health`` and ``enjournal status`` report: ready only while every service runs.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Health(BaseModel):
    """The state of each service of one engine process: ``running``, ``restarting`` (waiting out its
    backoff after a crash), ``stopped`` (ended on request) or ``failed``."""

    model_config = ConfigDict(frozen=True)

    services: dict[str, str] = {}

    @property
    def ready(self) -> bool:
        return all(state == "running" for state in self.services.values())

    @property
    def down(self) -> list[str]:
        return sorted(name for name, state in self.services.items() if state != "running")
