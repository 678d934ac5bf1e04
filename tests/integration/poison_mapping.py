"""A mapping for poison tests: ``tests.e2e_mapping`` plus two messages that break in unexpected ways.

* ``SURPRISE``: the mapping raises an exception class nobody planned for (a mapping bug);
* ``NAIVE|<n>``: the mapping returns a record the store cannot write (a naive event time, built without
  validation): the store raises a ``TypeError`` while writing the batch.
"""

from __future__ import annotations

from datetime import datetime

from engine.model import Coding, MapContext, MappingResult, Observation
from tests.e2e_mapping import map_message as e2e_map
from tests.helpers import fnr_id

NAME = "tests.integration.poison_mapping:map_message"


class Surprise(Exception):
    """Not an EnjournalError: what a bug in a mapping raises."""


def map_message(raw: bytes, ctx: MapContext) -> MappingResult:
    if raw == b"SURPRISE":
        raise Surprise("a message quoting content that must never be logged")
    if raw.startswith(b"NAIVE|"):
        n = raw.split(b"|")[1].decode()
        bad = Observation.model_construct(
            key=f"naive|{n}",
            subject=fnr_id(1),
            event_time=datetime(2026, 1, 1),
            provenance=ctx.provenance(f"naive-{n}"),
            code=Coding(code="X"),
            kind="observation",
            flags=(),
        )
        return MappingResult(records=(bad,), source_message_id=f"naive-{n}")
    return e2e_map(raw, ctx)
