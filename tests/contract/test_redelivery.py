"""Redelivery changes nothing, for every registered mapping, on the embedded bus + SQLite and on the real
RabbitMQ + PostgreSQL (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.bus import Bus
from engine.bus.embedded import EmbeddedBus
from engine.envelope import Envelope
from engine.store import Store
from engine.worker import Mapper
from tests.contract.conftest import good_samples, journal, work
from tests.contract.inputs import BAD_CASES, bad_input


@pytest.fixture(
    params=["embedded-sqlite", pytest.param("rabbitmq-postgres", marks=[pytest.mark.rabbitmq, pytest.mark.postgres])]
)
def bus_and_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Bus, Store]]:
    if request.param == "embedded-sqlite":
        bus: Any = EmbeddedBus(tmp_path / "queue.db")
        store = Store(f"sqlite:///{tmp_path / 'journal.db'}")
    else:
        bus = request.getfixturevalue("rabbit_bus")  # deleted and closed by its own fixture
        store = Store(request.getfixturevalue("pg_url"))
    try:
        yield bus, store
    finally:
        store.close()
        if isinstance(bus, EmbeddedBus):
            bus.close()


def _envelopes(mapping: str) -> tuple[list[Envelope], dict[str, dict[str, Any]]]:
    """Every good sample of ``mapping`` and the bad inputs made from it, and the options per adapter."""
    envelopes, options = [], {}
    for pair in good_samples(mapping):
        ctx = pair.context
        options[ctx.adapter] = ctx.options
        for raw in (pair.raw(), *(bad_input(case, pair.raw()) for case in BAD_CASES)):
            envelopes.append(
                Envelope.build(
                    raw,
                    adapter=ctx.adapter,
                    mapping=mapping,
                    content_type="application/octet-stream",
                    source_system=ctx.source_system,
                    charset=ctx.charset,
                    received_at=ctx.received_at,
                )
            )
    return envelopes, options


def test_redelivery_changes_nothing(mapping_name: str, bus_and_store: tuple[Bus, Store]) -> None:
    """The same envelopes (good samples and bad inputs) delivered again through the bus, the worker and the
    store leave every journal table as it was (record versions, identities, dead letters, archive): published
    a second time, and delivered again by the bus after a commit whose acks were lost."""
    bus, store = bus_and_store
    envelopes, options = _envelopes(mapping_name)
    mapper = Mapper(lambda adapter: options.get(adapter, {}))
    bus.publish(envelopes)
    assert work(bus, store, mapper, len(envelopes)) == len(envelopes)
    first = journal(store)
    assert first["record_versions"] and first["dead_letters"], "nothing to compare: no versions or no dead letters"
    bus.publish(envelopes)
    assert work(bus, store, mapper, len(envelopes)) == len(envelopes)
    assert journal(store) == first, "the same envelopes published again changed the journal"
    bus.publish(envelopes)
    assert work(bus, store, mapper, len(envelopes), ack=False) >= len(envelopes)  # committed, acks lost
    assert work(bus, store, mapper, len(envelopes)) >= len(envelopes)  # so the broker delivers them again
    assert journal(store) == first, "envelopes delivered again after their commit changed the journal"
    assert bus.depth()["work"] == 0
