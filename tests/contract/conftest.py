"""Fixtures and helpers of the conformance suite (what it checks and what a plugin provides: ``__init__.py``).

Three things here are the only places the suite depends on how the engine is put together:

* :func:`adapter_settings_classes`, :func:`build_adapter`, :func:`mapping_names`, :func:`resolve_mapping`:
  which adapter kinds and mappings are registered, and how to get one;
* :func:`rejection_code`: whether an envelope was refused by its adapter, and with which code;
* :data:`KNOWN_DEFECTS`: the tests that fail today for a reason outside the suite (strict xfail).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from engine.bus import Bus, Consumer, Delivery
from engine.envelope import Envelope
from engine.store import Store
from engine.store import schema as s
from tests import fixture_pairs
from tests.contract.inputs import BAD_CASES
from tests.fixture_pairs import MapFn, Pair

HERE = Path(__file__).resolve().parent


# -- What is registered: the one place that asks the registries ------------------------------------
def adapter_settings_classes() -> dict[str, type[BaseModel]]:
    """Every registered adapter kind -> its Settings model (built-ins and entry points)."""
    from engine import registry

    return {plugin.name: plugin.settings for plugin in registry.adapters()}


def build_adapter(kind: str, name: str, settings: BaseModel, runtime: Any) -> Any:
    """An adapter of ``kind`` built the way the engine builds it."""
    from engine import registry

    return registry.adapter(kind).build(name, settings, runtime)


def mapping_names() -> list[str]:
    """Every registered mapping name."""
    from engine import registry

    return sorted(plugin.name for plugin in registry.mappings())


def resolve_mapping(name: str) -> MapFn:
    from engine import registry

    return registry.resolve_mapping(name)


# -- Rejections: the one place that reads how an adapter refused an envelope -----------------------
def rejection_code(env: Envelope) -> str | None:
    """The reason code an adapter refused ``env`` with (the worker dead-letters it unmapped); None if accepted."""
    return env.rejection.code if env.rejection is not None else None


# -- Known defects: failing today for a reason outside this suite ---------------------------------
_HL7_CUT = (
    "HL7 v2 has no end-of-message marker: a message cut at a segment boundary or inside a segment maps its "
    "intact part with no error and no warning (only FHS/BHS batches are caught, HL7_BATCH_TRUNCATED)"
)
#: ``<module>::<test name with its parameters>`` -> why it fails today; the test is marked xfail(strict=True)
KNOWN_DEFECTS: dict[str, str] = {
    "test_mappings.py::test_bad_input_is_dead_lettered[hl7v2-half]": _HL7_CUT,
    "test_adapters.py::test_bad_input_is_dead_lettered[hl7-file-half]": _HL7_CUT,
    "test_adapters.py::test_bad_input_is_dead_lettered[mllp-half]": _HL7_CUT,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        why = KNOWN_DEFECTS.get(f"{item.path.name}::{item.name}") if HERE in item.path.parents else None
        if why is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=why))


# -- Parametrisation over the registries: a new plugin gets every test without an edit -------------
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "adapter_kind" in metafunc.fixturenames:
        kinds = sorted(adapter_settings_classes())
        metafunc.parametrize("adapter_kind", kinds, ids=kinds, scope="module")
    if "mapping_name" in metafunc.fixturenames:
        names = mapping_names()
        metafunc.parametrize("mapping_name", names, ids=names, scope="module")
    if "bad_case" in metafunc.fixturenames:
        metafunc.parametrize("bad_case", BAD_CASES, ids=BAD_CASES)


# -- Samples: the fixture pairs of each mapping ----------------------------------------------------
def good_samples(mapping: str) -> list[Pair]:
    """The mapping's fixture pairs that map; a failure saying what to add when it has none."""
    found = fixture_pairs.mapped(mapping)
    if not found:
        pytest.fail(
            f"mapping {mapping!r} has no fixture pair to drive it: add one input file to "
            f"tests/fixtures/{mapping}/ and write its .expected.json with ENJOURNAL_REGEN=1 (tests/fixture_pairs.py)"
        )
    return found


def sample(mapping: str) -> Pair:
    """The sample an adapter is driven with: the first good pair carrying a national identity number (the
    most personal data to keep out of logs), else the first good pair."""
    found = good_samples(mapping)
    return next((p for p in found if personal_data([p])[0]), found[0])


def personal_data(pairs: Iterable[Pair]) -> tuple[set[str], set[str]]:
    """(national identity numbers, name words) in the expected records of ``pairs``."""
    numbers: set[str] = set()
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("kind") in ("FNR", "DNR") and isinstance(node.get("value"), str):
                numbers.add(node["value"])
            for key in ("family_name", "given_name"):
                if isinstance(node.get(key), str):
                    names.update(w for w in re.split(r"[\s,]+", node[key]) if len(w) >= 3)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for pair in pairs:
        walk(pair.expectation())
    return numbers, names


def leaks(texts: Iterable[str], numbers: set[str], names: set[str]) -> list[str]:
    """Which of ``numbers`` (anywhere) and ``names`` (as whole words) occur in ``texts``."""
    found: set[str] = set()
    for text in texts:
        found.update(n for n in numbers if n in text)
        found.update(n for n in names if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text))
    return sorted(found)


def event_texts(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every captured structlog event as one line of text (keys and values)."""
    return [" ".join(f"{k}={v!s}" for k, v in e.items()) for e in events]


# -- Running the worker and reading the journal ----------------------------------------------------
class AckLost:
    """A consumer whose acks never reach the bus: a worker that committed and died before its ack."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def fetch(self, max_items: int, timeout: float) -> list[Delivery]:
        return self._consumer.fetch(max_items, timeout)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        pass

    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        self._consumer.requeue(deliveries)

    def close(self) -> None:
        self._consumer.close()


def work(bus: Bus, store: Store, mapper: Any, expected: int, *, ack: bool = True, timeout: float = 60.0) -> int:
    """The real worker consuming until it handled ``expected`` envelopes and the queue went quiet (a frame
    delivered again comes back as single envelopes); how many it handled. ``ack=False``: its acks are lost,
    so closing its consumer gives every delivery back to the queue."""
    from engine.worker import Worker

    worker = Worker(bus, store, mapper, batch_size=500, batch_wait=0.02)
    consumer: Consumer = bus.consumer(2000)
    if not ack:
        consumer = AckLost(consumer)
    done, quiet, deadline = 0, 0, time.monotonic() + timeout
    try:
        while (done < expected or quiet < 2) and time.monotonic() < deadline:
            n = worker.step(consumer)
            done, quiet = done + n, 0 if n else quiet + 1
    finally:
        consumer.close()
    return done


def dead_letters(store: Store) -> dict[str, dict[str, Any]]:
    """envelope id -> its dead-letter row."""
    return {r["envelope_id"]: r for r in store.dead_letters(limit=100_000, include_replayed=True)}


def archived(store: Store) -> list[Envelope]:
    """Every envelope in the raw archive."""
    with store.engine.connect() as c:
        ids = [r[0] for r in c.execute(sa.select(s.raw_archive.c.envelope_id))]
    return [env for i in ids if (env := store.archived(i)) is not None]


def record_keys(store: Store) -> set[str]:
    with store.engine.connect() as c:
        return {r[0] for r in c.execute(sa.select(s.record_versions.c.record_key))}


def journal(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every journal table (raw archive, versions, identities, dead letters, processed keys)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.engine.connect() as c:
        for table in s.metadata.sorted_tables:
            if table.name != "schema_migrations":
                rows = [
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in c.execute(table.select())
                ]
                out[table.name] = sorted(rows, key=repr)
    return out


STABLE_CODE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$")
#: codes that say something went wrong where nothing specific was foreseen
GENERIC_CODES = frozenset({"PERMANENT", "ENJOURNAL_ERROR", "MAPPING_CRASH", "ADAPTER_REJECTED"})


def stable(code: str | None) -> bool:
    """A reason code a sender or an operator can act on: UPPER_SNAKE_CASE and not a catch-all."""
    return code is not None and bool(STABLE_CODE.match(code)) and code not in GENERIC_CODES
