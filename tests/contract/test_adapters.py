"""The adapter contract, for every registered adapter kind (see the package docstring).

One run per kind (module scope): the engine's runtime (adapter, worker, embedded bus, SQLite journal)
built from a config, the kind's sample and the four bad inputs made from it delivered the way its
senders deliver (:mod:`tests.contract.drivers`), with the logs captured.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from engine.config import parse_config
from engine.envelope import Envelope
from engine.errors import ConfigError
from engine.runtime import Runtime
from tests.contract.conftest import (
    adapter_settings_classes,
    archived,
    build_adapter,
    dead_letters,
    event_texts,
    leaks,
    personal_data,
    record_keys,
    rejection_code,
    sample,
    stable,
)
from tests.contract.drivers import Delivery, driver_for
from tests.contract.inputs import BAD_CASES, bad_input
from tests.fixture_pairs import Pair

ADAPTER = "contract"
CODE_IN_TEXT = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


def _settings_class(kind: str) -> type[BaseModel]:
    return adapter_settings_classes()[kind]


def _mapping(kind: str) -> str:
    """The mapping an adapter of ``kind`` feeds by default (its samples are that mapping's fixture pairs)."""
    f = _settings_class(kind).model_fields.get("mapping")
    if f is None or not isinstance(f.default, str):
        pytest.fail(f"adapter kind {kind!r}: its Settings name no default mapping, so the suite has no samples")
    return f.default


def _config(section: dict[str, Any], root: Path) -> Any:
    try:
        return parse_config(
            {
                "bus": {"kind": "embedded", "path": str(root / "queue.db")},
                "store": {"url": f"sqlite:///{root / 'journal.db'}"},
                "workers": {"count": 1, "batch_size": 100, "batch_wait_ms": 10},
                "adapters": {ADAPTER: section},
            }
        )
    except ConfigError as exc:
        pytest.fail(
            f"cannot configure the adapter from its sample ({exc}); give the sample pair an adapter config "
            "(tests/fixtures/<mapping>/pairs.yaml) or its kind a driver (tests/contract/drivers.py)"
        )


@dataclass
class AdapterRun:
    kind: str
    pair: Pair
    inputs: dict[str, bytes]
    delivery: Delivery
    envelopes: list[Envelope]
    dead: dict[str, dict[str, Any]]
    record_keys: set[str]
    clean_stop: bool
    logs: list[MutableMapping[str, Any]]

    def envelopes_of(self, label: str) -> list[Envelope]:
        return [e for e in self.envelopes if self.delivery.matches[label](e)]


@pytest.fixture(scope="module")
def adapter_run(adapter_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdapterRun]:
    settings = _settings_class(adapter_kind)
    driver = driver_for(adapter_kind, settings)
    pair = sample(_mapping(adapter_kind))
    root = tmp_path_factory.mktemp(f"adapter-{adapter_kind}")
    config = _config(driver.section(adapter_kind, settings, root / "files", pair), root)
    inputs = {"good": pair.raw(), **{case: bad_input(case, pair.raw()) for case in BAD_CASES}}
    rt = Runtime.build(config)
    with capture_logs() as logs:
        rt.start()
        try:
            delivery = driver.deliver(rt, ADAPTER, pair, inputs, root / "files")
            envelopes, dead, keys = archived(rt.store), dead_letters(rt.store), record_keys(rt.store)
        finally:
            clean = rt.shutdown(30)
    yield AdapterRun(adapter_kind, pair, inputs, delivery, envelopes, dead, keys, clean, logs)


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


@dataclass
class _NoRuntime:
    """What an adapter gets at ``enjournal check``: it must not publish nor look anything up."""

    bus: Any = None
    keys: Any = None


def test_check_writes_nothing(adapter_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``check()`` on a config whose directories do not exist creates no file and no directory (it may
    refuse the config); nothing relative to the working directory either."""
    settings = _settings_class(adapter_kind)
    section = driver_for(adapter_kind, settings).section(
        adapter_kind, settings, tmp_path / "absent", sample(_mapping(adapter_kind))
    )
    config = _config(section, tmp_path / "absent")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = _tree(tmp_path)
    adapter = build_adapter(adapter_kind, ADAPTER, config.adapters[ADAPTER], _NoRuntime())
    try:
        adapter.check()
    except ConfigError:
        pass
    assert _tree(tmp_path) == before


def test_nothing_lost(adapter_run: AdapterRun) -> None:
    """Every input was answered and is accounted for: its envelopes are archived, or (never published) the
    sender was told why; every archived envelope came from an input; the engine stopped cleanly."""
    run = adapter_run
    assert run.clean_stop, "the engine did not stop cleanly (a service crashed or did not end)"
    assert set(run.delivery.answers) == set(run.inputs)
    for label in run.inputs:
        assert run.envelopes_of(label) or run.delivery.answers[label].text, f"{label}: neither archived nor told"
    unaccounted = [e.id for e in run.envelopes if not any(m(e) for m in run.delivery.matches.values())]
    assert not unaccounted, f"archived envelopes that come from no input: {unaccounted}"


def test_good_input_goes_through(adapter_run: AdapterRun) -> None:
    """The good sample delivered beside the bad ones is accepted and its records are in the journal."""
    run = adapter_run
    assert run.delivery.answers["good"].accepted, f"the good sample was refused: {run.delivery.answers['good']}"
    assert run.envelopes_of("good"), "the good sample was not published"
    expected = {r["key"] for r in run.pair.expectation().get("records", [])}
    assert expected <= run.record_keys, f"records of the good sample missing: {sorted(expected - run.record_keys)}"


def test_bad_input_is_dead_lettered(adapter_run: AdapterRun, bad_case: str) -> None:
    """A bad input is archived and dead-lettered with a stable reason code (by the adapter or the mapping);
    when the adapter itself refused it, the dead letter has the adapter's code."""
    run = adapter_run
    envelopes = run.envelopes_of(bad_case)
    assert envelopes, f"{bad_case}: not published, so neither archived nor dead-lettered"
    dead = [run.dead[e.id] for e in envelopes if e.id in run.dead]
    assert dead, f"{bad_case}: archived but not dead-lettered ({len(envelopes)} envelope(s) mapped)"
    for d in dead:
        assert stable(d["reason_code"]), f"{bad_case}: dead letter code {d['reason_code']!r} is not stable"
    for e in envelopes:
        code = rejection_code(e)
        if code is not None:
            assert run.dead.get(e.id, {}).get("reason_code") == code, f"{bad_case}: refused {code}, dead letter differs"


def test_sender_is_told(adapter_run: AdapterRun, bad_case: str) -> None:
    """What the adapter refuses itself, the sender is told with its code (NAK, AppRec, error folder or
    .reason file); a dead letter of the mapping after the answer is the operator's (``enjournal dead-letters``)."""
    run = adapter_run
    answer = run.delivery.answers[bad_case]
    envelopes = run.envelopes_of(bad_case)
    codes = {c for e in envelopes if (c := rejection_code(e)) is not None}
    if not envelopes:  # refused before any publish: the answer carries the reason
        assert not answer.accepted and any(stable(c) for c in CODE_IN_TEXT.findall(answer.text)), answer
    for code in codes:
        assert code in answer.text, f"{bad_case}: refused with {code}, the sender was told {answer.text[:300]!r}"
    if codes and len(codes) == len(envelopes):
        assert not answer.accepted, f"{bad_case}: every envelope refused, yet the sender was told it was accepted"


def test_no_personal_data_in_logs(adapter_run: AdapterRun) -> None:
    """No national identity number or name of the sample, nor the (personal) file names, in any log line."""
    numbers, names = personal_data([adapter_run.pair])
    names |= adapter_run.delivery.personal
    assert numbers or names, "the sample carries no personal data: nothing would be checked"
    found = leaks(event_texts(adapter_run.logs), numbers, names)
    assert not found, f"personal data in the {adapter_run.kind} adapter's logs: {found}"
