"""The publisher's recent-key cache (bounded in keys and in contents per key) and the publisher under a
sender that reuses one control id for every message (embedded bus, SQLite store)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.handoff import Handoff
from adapters.hl7_intake import Hl7Options, triage
from adapters.mllp.client import synthetic_adt
from adapters.mllp.lookups import StoreLookups
from adapters.mllp.publisher import Known, Publisher, Receipt, RecentKeys
from engine.bus.embedded import EmbeddedBus
from engine.errors import BusUnavailable
from engine.store import Store
from tests.unit.mllp.helpers import drain


def test_recent_keys_keep_the_last_contents_of_a_key() -> None:
    cache = RecentKeys(2)
    cache.put("HL7|A|B|1", "h1", "env-1", "AA")
    cache.put("HL7|A|B|1", "h2", "env|2", "AE")
    cache.put("HL7|A|B|1", "h1", "env-3", "AA")  # the same content again: replaced (now the newest), not added
    assert cache.get("HL7|A|B|1") == (Known("h2", "env|2", "AE"), Known("h1", "env-3", "AA"))
    cache.put("HL7|A|B|2", "h1", "env-4", "AA")
    cache.put("HL7|A|B|3", "h1", "env-5", "AA")  # over size: the least recently used key goes
    assert cache.get("HL7|A|B|1") == () and cache.get("HL7|A|B|3") == (Known("h1", "env-5", "AA"),)


def test_recent_keys_keep_at_most_a_few_contents_per_key() -> None:
    cache = RecentKeys(10)
    for i in range(5000):
        cache.put("HL7|A|B|SAME", f"h{i}", f"env-{i}", "AA")
        assert len(cache.get("HL7|A|B|SAME")) <= RecentKeys.CONTENTS
    assert [k.content_hash for k in cache.get("HL7|A|B|SAME")] == [
        f"h{i}" for i in range(5000 - RecentKeys.CONTENTS, 5000)
    ]


def _same_control_id(i: int) -> bytes:
    return synthetic_adt(i).replace(f"|MSG{i:08d}|".encode(), b"|REUSED-1|")


def test_a_sender_reusing_one_control_id_costs_the_same_per_message(bus: EmbeddedBus, store: Store) -> None:
    """3,000 different messages under one MSH-10: each is published once, flagged as a reuse, and the work
    per message in the listener (the contents of the key it compares with) stays the same from the first
    message to the last."""
    n, batch, key = 3000, 250, "HL7|LOADGEN|TEST|REUSED-1"
    compared: list[int] = []

    async def go() -> list[Receipt]:
        lookups = StoreLookups(store)
        publisher = Publisher(Handoff("t", bus, "mllp"), lookups)
        running = asyncio.create_task(publisher.run())
        receipts: list[Receipt] = []
        try:
            for start in range(0, n, batch):
                futures = [
                    publisher.submit(triage(_same_control_id(i), adapter="t", options=Hl7Options(), source_system=None))
                    for i in range(start, start + batch)
                ]
                receipts += await asyncio.gather(*futures)
                compared.append(len(publisher.cache.get(key)))
        finally:
            await publisher.close()
            await running
            await lookups.close()
        return receipts

    receipts = asyncio.run(go())
    assert [r.code for r in receipts] == ["AA"] * n
    assert len({r.envelope_id for r in receipts}) == n  # each one a message of its own
    assert max(compared) == RecentKeys.CONTENTS  # the same at the end as after the first batches
    envelopes = drain(bus, expected=n)
    assert len(envelopes) == n
    assert sum("control_id_reused" in e.attributes for e in envelopes) == n - 1


def test_a_message_submitted_after_close_fails_at_once(bus: EmbeddedBus, store: Store) -> None:
    async def go() -> asyncio.Future[Receipt]:
        lookups = StoreLookups(store)
        publisher = Publisher(Handoff("t", bus, "mllp"), lookups)
        running = asyncio.create_task(publisher.run())
        await publisher.close()
        late = publisher.submit(triage(synthetic_adt(1), adapter="t", options=Hl7Options(), source_system=None))
        await running
        await lookups.close()
        return late

    late = asyncio.run(go())
    assert late.done()
    with pytest.raises(BusUnavailable):
        late.result()
    assert drain(bus) == []
