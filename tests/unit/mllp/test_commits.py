"""The commit watch of ``ack_after: commit`` against a real (SQLite) store: every waiting envelope is looked
up, also behind a window of older ones that never commit, and the pause never drops below the poll interval."""

from __future__ import annotations

import asyncio

from adapters.mllp.commits import IDLE_TICKS, MAX_INTERVAL, CommitWatch
from adapters.mllp.lookups import StoreLookups
from engine.outcome import Outcome
from engine.store import Store
from tests.helpers import envelope, fnr_id, outcome, person


def test_newer_commits_are_found_behind_a_full_window_of_uncommitted_ones(store: Store) -> None:
    """40 older envelopes never commit (a worker backlog); the 5 newest are committed: their answers come,
    although each look-up asks for fewer ids than wait."""
    store.commit_batch(
        [outcome(f"new-{i}", [person(fnr_id(i + 1))]) for i in range(4)]
        + [Outcome(envelope("new-4"), reason_code="HL7_NO_PID", reason="HL7_NO_PID")]
    )

    async def go() -> list[str | None]:
        lookups = StoreLookups(store)
        watch = CommitWatch(lookups, interval=0.001, window=10)
        old = [asyncio.ensure_future(watch.outcome(f"old-{i}", 60)) for i in range(40)]
        try:
            return await asyncio.gather(*(watch.outcome(f"new-{i}", 30) for i in range(5)))
        finally:
            assert not any(t.done() for t in old)  # still waiting: never committed
            for t in old:
                t.cancel()
            await asyncio.wait(old)
            await watch.close()
            await lookups.close()

    assert asyncio.run(go()) == [None, None, None, None, "HL7_NO_PID"]


def test_the_pause_grows_while_nothing_commits_but_never_below_the_interval(store: Store) -> None:
    async def pauses(interval: float) -> list[float]:
        lookups = StoreLookups(store)
        watch = CommitWatch(lookups, interval=interval)
        await lookups.close()
        pause, out = interval, []
        for empty in range(1, IDLE_TICKS + 6):
            pause = watch._pause(pause, empty)
            out.append(pause)
        return out

    fast = asyncio.run(pauses(0.005))
    assert fast[: IDLE_TICKS - 1] == [0.005] * (IDLE_TICKS - 1) and fast[-1] == MAX_INTERVAL
    slow = asyncio.run(pauses(0.2))  # commit_poll_ms above MAX_INTERVAL: never polls faster than asked
    assert min(slow) == 0.2
