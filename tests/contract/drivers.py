"""How the conformance suite feeds each kind of adapter the way its senders do, and reads their answers.

A driver writes the adapter's config section (from its Settings model and the sample pair it is driven
with), delivers inputs, waits until each is handled and committed, and says per input what the sender
was told. :func:`driver_for` picks one: :data:`DRIVERS` by kind, else :class:`FileDrop` for any adapter
whose Settings have a ``directory``. A new transport (a socket protocol, a queue, an HTTP endpoint) adds
its driver to :data:`DRIVERS`; until then its tests fail and say so.
"""

from __future__ import annotations

import fnmatch
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import pytest
from pydantic import BaseModel

from engine.envelope import Envelope
from engine.runtime import Runtime
from tests.fixture_pairs import Pair
from tests.helpers import fnr

#: the envelope attribute in which a directory adapter names the file an envelope came from
FILE_ATTRIBUTE = "file"
#: settings that make a directory adapter handle a dropped file at once
FAST_FILE_SETTINGS: dict[str, Any] = {
    "stable_seconds": 0,
    "poll_interval": 0.05,
    "incomplete_grace_seconds": 0,
    "schedule": None,  # poll continuously, not at a cron time
}
WAIT_SECONDS = 30.0
#: the bytes that open and close an MLLP frame
START_BLOCK, END_BLOCK = b"\x0b", b"\x1c"


@dataclass(frozen=True)
class Answer:
    """What the sender was told about one input."""

    accepted: bool  # AA/CA; a file moved to archive/
    text: str  # the ACK, or the .reason / report / receipt files named after the input


@dataclass
class Delivery:
    """The inputs as delivered and the answers the sender got."""

    answers: dict[str, Answer] = field(default_factory=dict)
    #: label -> does an archived envelope come from this input
    matches: dict[str, Callable[[Envelope], bool]] = field(default_factory=dict)
    #: personal data the delivery itself carries (file names and their words), to be kept out of logs
    personal: set[str] = field(default_factory=set)


class Driver(Protocol):
    def section(self, kind: str, settings: type[BaseModel], root: Path, pair: Pair) -> dict[str, Any]:
        """The adapter's config section, with its directories (if any) under ``root``."""

    def deliver(self, rt: Runtime, adapter: str, pair: Pair, inputs: dict[str, bytes], root: Path) -> Delivery:
        """Deliver every input (made from ``pair``), wait until each is answered and committed, and collect
        the answers."""


def _required_paths(settings: type[BaseModel], section: dict[str, Any], root: Path) -> dict[str, str]:
    """A directory under ``root`` for each required path field the section leaves unset (an outbox...)."""
    return {
        name: str(root / name)
        for name, f in settings.model_fields.items()
        if f.is_required() and name not in section and f.annotation is Path
    }


def wait_until(done: Callable[[], bool], what: str, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(0.05)


def wait_committed(rt: Runtime) -> None:
    """Until the work queue is empty (every envelope acked, so committed) and the archive stops growing."""
    last = -1

    def settled() -> bool:
        nonlocal last
        received = sum(rt.store.counts()["received"].values())
        quiet = rt.bus.depth()["work"] == 0 and received == last
        last = received
        return quiet

    wait_until(settled, "the work queue to drain and the journal to settle")


def _from_file(name: str, env: Envelope) -> bool:
    return env.attributes.get(FILE_ATTRIBUTE) == name


def _carries(raw: bytes, env: Envelope) -> bool:
    return env.raw == raw


class FileDrop:
    """Any adapter polling a ``directory``: inputs are files renamed into it, as a careful sender writes them;
    the answer is where the file went (``archive/`` or the error folder) and the files named after it there."""

    #: a file name with a patient's name and national number in it, which must never reach a log
    PERSONAL = f"Bjornar Odegard {fnr(24)}"

    def section(self, kind: str, settings: type[BaseModel], root: Path, pair: Pair) -> dict[str, Any]:
        own = (pair.adapter_config or {}).values()
        base = next((dict(v) for v in own if v.get("type") == kind), {"type": kind})
        fields = settings.model_fields
        base.update({k: v for k, v in FAST_FILE_SETTINGS.items() if k in fields})
        base["directory"] = str(root / "in")
        if "mapping" in fields:
            base.setdefault("mapping", pair.mapping)
        base.update(_required_paths(settings, base, root))
        return base

    def _name(self, pattern: str, label: str, suffix: str) -> str:
        stem = f"{self.PERSONAL} {label}"
        name = stem + suffix if pattern == "*" else pattern.replace("*", stem, 1)
        if "*" not in pattern or not fnmatch.fnmatch(name, pattern):
            pytest.fail(f"cannot name a file for the pattern {pattern!r}: give the sample's adapter a '*' pattern")
        return name

    def deliver(self, rt: Runtime, adapter: str, pair: Pair, inputs: dict[str, bytes], root: Path) -> Delivery:
        settings = rt.config.adapters[adapter]
        inbox = Path(settings.directory)
        inbox.mkdir(parents=True, exist_ok=True)
        pattern = str(getattr(settings, "pattern", "*"))
        names = {label: self._name(pattern, label, pair.input.suffix) for label in inputs}
        for label, data in inputs.items():
            part = inbox / (names[label] + ".part")
            part.write_bytes(data)
            part.rename(inbox / names[label])
        wait_until(lambda: not any((inbox / n).exists() for n in names.values()), "every file to leave the inbox")
        wait_committed(rt)
        errors = Path(getattr(settings, "errors", inbox / "error"))
        delivery = Delivery(personal={*names.values(), *self.PERSONAL.split()})
        for label, name in names.items():
            moved = [p for p in root.rglob("*") if p.name == name and p.parent != inbox and p.is_file()]
            assert len(moved) == 1, f"{label}: the file is not in exactly one place ({len(moved)} found)"
            assert moved[0].read_bytes() == inputs[label], f"{label}: the moved file is not what was dropped"
            told = [p for p in root.rglob(name + "*") if p != moved[0] and p.is_file()]
            delivery.answers[label] = Answer(
                accepted=errors not in moved[0].parents,
                text="\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(told)),
            )
            delivery.matches[label] = partial(_from_file, name)
        return delivery


class Mllp:
    """An MLLP listener: each input is one frame on a connection of its own; the answer is the ACK."""

    def section(self, kind: str, settings: type[BaseModel], root: Path, pair: Pair) -> dict[str, Any]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return {"type": kind, "host": "127.0.0.1", "port": port, "mapping": pair.mapping}

    def deliver(self, rt: Runtime, adapter: str, pair: Pair, inputs: dict[str, bytes], root: Path) -> Delivery:
        from adapters.mllp.client import MllpClient

        port = int(rt.config.adapters[adapter].port)

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_until(listening, "the listener")
        delivery = Delivery()
        for label, given in inputs.items():
            data = given.replace(START_BLOCK, b"").replace(END_BLOCK, b"")  # no sender can put them in a frame
            with MllpClient("127.0.0.1", port, timeout=WAIT_SECONDS) as client:
                [ack] = client.send(data)
            delivery.answers[label] = Answer(ack.code in ("AA", "CA"), ack.raw.decode("latin-1"))
            delivery.matches[label] = partial(_carries, data)
        wait_committed(rt)
        return delivery


#: drivers by adapter kind, for adapters the generic one cannot drive
DRIVERS: dict[str, Driver] = {"mllp": Mllp()}


def driver_for(kind: str, settings: type[BaseModel]) -> Driver:
    """The driver of ``kind``; a failure saying what to add when the suite cannot drive it."""
    if kind in DRIVERS:
        return DRIVERS[kind]
    if "directory" in settings.model_fields:
        return FileDrop()
    pytest.fail(
        f"adapter kind {kind!r} ({settings.__module__}): the conformance suite has no way to drive it. Add a "
        "driver to DRIVERS in tests/contract/drivers.py (its config section, how to deliver an input the way "
        "its senders do, and what the sender is told)"
    )
