"""``enjournal check``: can the engine start with this config? It reads and writes nothing.

The config was validated when it was loaded (mapping names included). Then: the store answers and its
schema version (migrations still to apply are reported, not run); the bus answers (no queue is declared:
queues not declared yet are reported); each adapter's ``check()``, on an adapter built with a runtime that
refuses to publish or look anything up. What ``enjournal run`` creates (a SQLite file, the schema, the
queues, an adapter's directories) is reported as still to come, never made here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from engine import registry
from engine.bus import Consumer
from engine.config import BusConfig, EmbeddedBusConfig, EngineConfig, RabbitBusConfig, StoreConfig
from engine.envelope import Envelope
from engine.errors import BusUnavailable, EnjournalError, StoreUnavailable
from engine.readonly import connect_read_only
from engine.store.probe import probe

if TYPE_CHECKING:
    from adapters.base import ProcessedKeys
    from engine.bus import Bus
    from engine.plugin import AdapterSettings

Part = Literal["store", "bus", "adapter"]


@dataclass(frozen=True)
class Finding:
    """One line of the check: what was checked, whether it is usable, and what was seen (no values)."""

    part: Part
    name: str
    ok: bool
    detail: str


def run_checks(config: EngineConfig) -> list[Finding]:
    """The store, the bus, then every adapter; each one checked whatever the others gave."""
    return [check_store(config.store), check_bus(config.bus)] + [
        check_adapter(name, settings) for name, settings in config.adapters.items()
    ]


def exit_status(findings: Sequence[Finding]) -> int:
    """0 all usable; 2 the store or the bus cannot be reached (nothing could run); 1 an adapter's source."""
    if any(not f.ok and f.part != "adapter" for f in findings):
        return 2
    return 0 if all(f.ok for f in findings) else 1


def check_store(cfg: StoreConfig) -> Finding:
    try:
        state = probe(cfg.url_with_secret())
    except StoreUnavailable as exc:
        return Finding("store", "store", False, exc.reason)
    if not state.exists:
        return Finding("store", "store", True, f"ok ({state.dialect}), not created yet: `enjournal run` creates it")
    pending = f", migrations pending: {state.pending} (`enjournal run` applies them)" if state.pending else ""
    return Finding("store", "store", True, f"ok ({state.dialect}), schema version {state.version}{pending}")


def check_bus(cfg: BusConfig) -> Finding:
    try:
        if isinstance(cfg, EmbeddedBusConfig):
            note = _embedded_queue(Path(cfg.path))
        else:
            note = _rabbit_queues(cfg)
    except BusUnavailable as exc:
        return Finding("bus", "bus", False, exc.reason)
    return Finding("bus", "bus", True, f"ok ({cfg.kind}){note}")


def _embedded_queue(path: Path) -> str:
    if not path.exists():
        return ", not created yet: `enjournal run` creates it"
    try:
        conn = connect_read_only(path)
        try:
            conn.execute("SELECT 1 FROM queue LIMIT 1").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return ", queue tables not created yet: `enjournal run` creates them"
        raise BusUnavailable(f"embedded queue unavailable ({type(exc).__name__})") from None
    except sqlite3.Error as exc:
        raise BusUnavailable(f"embedded queue unavailable ({type(exc).__name__})") from None
    return ""


def _rabbit_queues(cfg: RabbitBusConfig) -> str:
    from engine.bus.rabbit import RabbitBus

    bus = RabbitBus(cfg)
    try:
        bus.check()  # connects, declares nothing
        try:
            bus.depth()  # passive declares: fails when a queue is not there
        except BusUnavailable:
            return ", queues not declared yet: `enjournal run` declares them"
        return ""
    finally:
        bus.close()


def check_adapter(name: str, settings: AdapterSettings) -> Finding:
    try:
        registry.adapter(settings.type).build(name, settings, CheckRuntime()).check()
    except EnjournalError as exc:
        return Finding("adapter", name, False, exc.reason)
    return Finding("adapter", name, True, "ok")


# -- what an adapter is built with for its check: nothing to publish to, nothing to look up ---------------
def _refuse() -> BusUnavailable:
    return BusUnavailable("enjournal check publishes and consumes nothing")


class _NoBus:
    """A bus that refuses everything (:class:`engine.bus.Bus`)."""

    def declare(self) -> None:
        raise _refuse()

    def check(self) -> None:
        raise _refuse()

    def publish(self, envelopes: Sequence[Envelope], timeout: float = 30.0) -> None:
        raise _refuse()

    def publish_async(self, envelopes: Sequence[Envelope]) -> Future[None]:
        raise _refuse()

    def ready_to_publish(self) -> bool:
        return False

    def dead_letter(self, items: Sequence[tuple[Envelope, str]]) -> None:
        raise _refuse()

    def consumer(self, prefetch: int = 1000) -> Consumer:
        raise _refuse()

    def depth(self) -> dict[str, int]:
        raise _refuse()

    def close(self) -> None:
        return None


class _NoKeys:
    """Processed-message keys that refuse every look-up (:class:`adapters.base.ProcessedKeys`)."""

    def processed_contents(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[tuple[str, str] | None, str | None]]:
        raise StoreUnavailable("enjournal check looks nothing up")

    def commit_outcomes(self, envelope_ids: Sequence[str]) -> dict[str, str | None]:
        raise StoreUnavailable("enjournal check looks nothing up")

    def remember(self, items: Sequence[tuple[str, str, str, str]]) -> None:
        raise StoreUnavailable("enjournal check writes nothing")


@dataclass
class CheckRuntime:
    """The runtime an adapter is built with for ``check``: its bus and keys refuse to be used."""

    bus: Bus = field(default_factory=_NoBus)
    keys: ProcessedKeys = field(default_factory=_NoKeys)
