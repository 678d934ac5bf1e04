"""The isolation of what a store refuses (engine.store.isolate), with a stand-in commit: every envelope
the commit refuses ends up rejected alone, every other one committed once, an outage stops the search."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from engine.errors import StoreUnavailable
from engine.store import isolate
from engine.store.text import TextNotStorable


class Commits:
    """Commits a part unless it holds a refused item; records what was committed and rejected."""

    def __init__(self, refused: set[int], outage_after: int | None = None) -> None:
        self.refused, self.outage_after = refused, outage_after
        self.calls, self.committed, self.rejected = 0, [], []

    def commit(self, part: Sequence[int]) -> str:
        self.calls += 1
        if self.outage_after is not None and self.calls > self.outage_after:
            raise StoreUnavailable("down")
        if self.refused & set(part):
            raise TextNotStorable("record 0 (person) key: NUL character") if 0 in part else KeyError("x")
        self.committed.extend(part)
        return "ok"

    def reject(self, item: int, exc: Exception) -> str:
        self.rejected.append((item, isolate.reason_for(exc)[0]))
        return "dead"


@pytest.mark.parametrize("refused", [{0}, {499}, {3, 250, 251}, set(range(0, 500, 50))])
def test_each_refused_envelope_is_rejected_alone_and_the_rest_committed(refused: set[int]) -> None:
    c = Commits(refused)
    out = isolate.split(c.commit, c.reject, list(range(500)), KeyError("first"))
    assert sorted(c.committed) == sorted(set(range(500)) - refused)
    assert sorted(i for i, _ in c.rejected) == sorted(refused)
    assert all(code == ("TEXT_NOT_STORABLE" if i == 0 else "STORE_REJECTED") for i, code in c.rejected)
    assert out.count("dead") == len(refused)
    if len(refused) == 1:
        assert c.calls <= 2 * 9  # two halves per level of a 500-batch


def test_an_outage_during_the_search_stops_it() -> None:
    c = Commits({7}, outage_after=2)
    with pytest.raises(StoreUnavailable):
        isolate.split(c.commit, c.reject, list(range(64)), KeyError("first"))


def test_the_reason_names_the_error_type_and_the_table_never_a_value() -> None:
    exc = ValueError("Kari Nordmann 01010112345")
    exc.enjournal_table = "record_versions"  # type: ignore[attr-defined]
    assert isolate.reason_for(exc) == ("STORE_REJECTED", "STORE_REJECTED: ValueError writing record_versions")
