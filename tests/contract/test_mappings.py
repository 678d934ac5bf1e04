"""The mapping contract, for every registered mapping (see the package docstring).

One run per mapping (module scope): every good sample of its fixture pairs and the four bad inputs made
from each go through the real worker into a SQLite journal on the embedded bus, with the logs captured.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from engine.bus.embedded import EmbeddedBus
from engine.envelope import Envelope
from engine.errors import PermanentError
from engine.model import MappingResult
from engine.store import Store
from engine.worker import Mapper
from tests import fixture_pairs
from tests.contract.conftest import (
    archived,
    dead_letters,
    event_texts,
    good_samples,
    leaks,
    personal_data,
    record_keys,
    resolve_mapping,
    stable,
    work,
)
from tests.contract.inputs import BAD_CASES, REFUSED, bad_input
from tests.fixture_pairs import MapFn, Pair


@dataclass(frozen=True)
class Pure:
    """What ``map_message`` did with one input, called directly."""

    result: MappingResult | None = None
    code: str | None = None  # PermanentError code
    message: str = ""
    crashed: str | None = None  # the type of any other exception

    @classmethod
    def of(cls, fn: MapFn, raw: bytes, pair: Pair) -> Pure:
        try:
            return cls(result=fn(raw, pair.context))
        except PermanentError as exc:
            return cls(code=exc.code, message=str(exc))
        except Exception as exc:  # noqa: BLE001 - any other exception breaks the contract: recorded, asserted
            return cls(crashed=type(exc).__name__)


@dataclass
class Case:
    pair: Pair
    bad_case: str | None  # None: the good sample itself
    envelope: Envelope
    pure: Pure


@dataclass
class MappingRun:
    mapping: str
    cases: list[Case]
    dead: dict[str, dict[str, Any]]
    archived_ids: set[str]
    record_keys: set[str]
    logs: list[MutableMapping[str, Any]] = field(default_factory=list)

    def of(self, bad_case: str | None) -> list[Case]:
        return [c for c in self.cases if c.bad_case == bad_case]


def _envelope(mapping: str, pair: Pair, raw: bytes) -> Envelope:
    ctx = pair.context
    return Envelope.build(
        raw,
        adapter=ctx.adapter,
        mapping=mapping,
        content_type="application/octet-stream",
        source_system=ctx.source_system,
        charset=ctx.charset,
        received_at=ctx.received_at,
    )


def _options(pairs: list[Pair]) -> dict[str, dict[str, Any]]:
    """Mapping options per adapter name, as the runtime gives them to the worker."""
    options: dict[str, dict[str, Any]] = {}
    for p in pairs:
        known = options.setdefault(p.context.adapter, p.context.options)
        assert known == p.context.options, f"{p}: two pairs of one adapter name with different options"
    return options


@pytest.fixture(scope="module")
def mapping_run(mapping_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MappingRun]:
    pairs = good_samples(mapping_name)
    fn = resolve_mapping(mapping_name)
    cases = []
    for pair in pairs:
        for bad in (None, *BAD_CASES):
            raw = pair.raw() if bad is None else bad_input(bad, pair.raw())
            cases.append(Case(pair, bad, _envelope(mapping_name, pair, raw), Pure.of(fn, raw, pair)))
    root: Path = tmp_path_factory.mktemp(f"mapping-{mapping_name}")
    bus, store = EmbeddedBus(root / "queue.db"), Store(f"sqlite:///{root / 'journal.db'}")
    options = _options(pairs)
    try:
        with capture_logs() as logs:
            bus.publish([c.envelope for c in cases])
            handled = work(bus, store, Mapper(lambda adapter: options.get(adapter, {})), len(cases))
        assert handled == len(cases), f"the worker handled {handled} of {len(cases)} envelopes"
        yield MappingRun(
            mapping_name, cases, dead_letters(store), {e.id for e in archived(store)}, record_keys(store), logs
        )
    finally:
        bus.close()
        store.close()


def _expected_keys(pair: Pair) -> set[str]:
    return {r["key"] for r in pair.expectation().get("records", [])}


def test_good_samples_are_journaled(mapping_run: MappingRun) -> None:
    """Each good sample maps as its expected file says, is archived, not dead-lettered, and its records are
    in the journal."""
    for c in mapping_run.of(None):
        assert c.pure.result is not None, f"{c.pair}: {c.pure.code or c.pure.crashed}"
        assert c.envelope.id in mapping_run.archived_ids, f"{c.pair}: not archived"
        assert c.envelope.id not in mapping_run.dead, f"{c.pair}: dead-lettered {mapping_run.dead[c.envelope.id]}"
        assert _expected_keys(c.pair) <= mapping_run.record_keys, f"{c.pair}: records missing from the journal"


def _problem(c: Case, run: MappingRun) -> str | None:
    """Why one bad input breaks the contract (None: it does not)."""
    if c.envelope.id not in run.archived_ids:
        return "lost: not in the raw archive"
    dead = run.dead.get(c.envelope.id)
    if c.pure.crashed:
        return f"map_message raised {c.pure.crashed}, not a PermanentError"
    if c.pure.code is not None:
        if not stable(c.pure.code):
            return f"PermanentError code {c.pure.code!r} is not a stable reason code"
        if dead is None or dead["reason_code"] != c.pure.code:
            return f"raised {c.pure.code} but the dead letter says {dead and dead['reason_code']}"
        return None
    result = c.pure.result
    assert result is not None
    if not (result.records or result.links or result.warnings):
        return "an empty result and no error"
    if dead is not None:
        return None if stable(dead["reason_code"]) else f"dead letter code {dead['reason_code']!r} is not stable"
    if c.bad_case in REFUSED:
        return "mapped, not refused"
    intact = next(x for x in run.of(None) if x.pair == c.pair).pure.result
    new = set(result.warnings) - set(intact.warnings if intact else ())
    return None if new else "mapped without an error or a new warning"


def test_bad_input_is_dead_lettered(mapping_run: MappingRun, bad_case: str) -> None:
    """Empty and random bytes are a PermanentError with a stable code, archived and dead-lettered with it.
    A damaged sample (cut in half, a NUL byte) is that too, or the worker's dead letter (text the journal
    cannot hold), or mapped with a warning the intact sample does not give. Never another exception, never
    an empty result without a dead letter, nothing lost."""
    problems = {str(c.pair): p for c in mapping_run.of(bad_case) if (p := _problem(c, mapping_run))}
    total = len(mapping_run.of(bad_case))
    assert not problems, f"{len(problems)} of {total} samples ({bad_case}): {problems}"


def test_mapping_is_pure(mapping_name: str) -> None:
    """Each good sample mapped twice, and the samples in both orders, gives the same records and hashes."""
    fn = resolve_mapping(mapping_name)
    pairs = good_samples(mapping_name)

    def run(order: list[Pair]) -> dict[str, Any]:
        out = {}
        for p in order:
            result = fn(p.raw(), p.context)
            out[str(p)] = (fixture_pairs.render(result), [r.version_hash() for r in result.records])
        return out

    assert run(pairs) == run(list(reversed(pairs))) == run(pairs)


def test_no_personal_data_in_logs_or_reasons(mapping_run: MappingRun) -> None:
    """No national identity number or name of the samples in a log line captured while mapping and storing,
    in a dead letter's reason or in a PermanentError's message."""
    numbers, names = personal_data(c.pair for c in mapping_run.of(None))
    assert numbers or names, "the samples carry no personal data: nothing would be checked"
    texts = {
        "logs": event_texts(mapping_run.logs),
        "dead-letter reasons": [d["reason"] for d in mapping_run.dead.values()],
        "error messages": [c.pure.message for c in mapping_run.cases],
    }
    found = {where: hit for where, t in texts.items() if (hit := leaks(t, numbers, names))}
    assert not found, f"personal data: {found}"
