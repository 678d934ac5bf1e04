"""The current version of a record: newest event time, then the clinically later status, then highest hash."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from engine.store.journal import current_versions


def _row(status: str, event_us: int, version_hash: str) -> dict[str, Any]:
    return {
        "record_key": "lab|R1:item:1",
        "kind": "observation",
        "content": "{}",
        "subject_key": "s",
        "status": status,
        "event_us": event_us,
        "version_hash": version_hash,
    }


@pytest.mark.parametrize(
    ("earlier", "later"),
    [("preliminary", "final"), ("final", "corrected"), ("corrected", "cancelled"), ("preliminary", "cancelled")],
)
def test_in_one_second_the_later_status_wins_whatever_the_hashes(earlier: str, later: str) -> None:
    for hashes in (("a", "f"), ("f", "a")):
        rows = [_row(earlier, 1_000_000, hashes[0]), _row(later, 1_000_000, hashes[1])]
        for order in itertools.permutations(rows):
            current, history = current_versions(order)
            assert [r["status"] for r in current] == [later]
            assert [r["status"] for r in history] == [earlier]


def test_a_newer_event_time_wins_over_a_later_status() -> None:
    rows = [_row("corrected", 1_000_000, "f"), _row("preliminary", 2_000_000, "a")]
    for order in itertools.permutations(rows):
        assert [r["status"] for r in current_versions(order)[0]] == ["preliminary"]


def test_same_time_and_status_falls_back_to_the_highest_hash() -> None:
    rows = [_row("final", 1_000_000, "a"), _row("final", 1_000_000, "f")]
    for order in itertools.permutations(rows):
        assert [r["version_hash"] for r in current_versions(order)[0]] == ["f"]


def _stored(key: str, kind: str, status: str, event_us: int, content: str) -> dict[str, Any]:
    return {
        "record_key": key,
        "kind": kind,
        "content": content,
        "subject_key": "s",
        "status": status,
        "event_us": event_us,
        "version_hash": "h" + key,
    }


def test_a_cancelled_report_retracts_the_results_that_name_it() -> None:
    """An order cancelled as a whole (HL7 OBR-25 X without OBX) names no result: its Report's cancellation
    reaches every result whose content names the report, unless the result is newer."""
    names = '{"report_key":"hl7v2|LAB|report|F1"}'
    rows = [
        _stored("hl7v2|LAB|report|F1", "report", "cancelled", 20, "{}"),
        _stored("hl7v2|LAB|observation|F1|HB|", "observation", "final", 10, names),
        _stored("hl7v2|LAB|observation|F1|NA|", "observation", "final", 30, names),
        _stored("hl7v2|LAB|observation|F2|HB|", "observation", "final", 10, '{"report_key":"hl7v2|LAB|report|F2"}'),
    ]
    current, _history = current_versions(rows)
    status = {r["record_key"]: r["status"] for r in current}
    assert status["hl7v2|LAB|observation|F1|HB|"] == "cancelled"
    assert status["hl7v2|LAB|observation|F1|NA|"] == "final"  # newer than the cancellation
    assert status["hl7v2|LAB|observation|F2|HB|"] == "final"  # another order
