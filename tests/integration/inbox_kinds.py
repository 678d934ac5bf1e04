"""The three directory adapters (hl7-file, kith-file, csv) built the same way for the inbox tests.

``adapter(kind, root, bus)`` builds one with its inbox at ``root/in`` (the KITH outbox at ``root/out``),
polling fast; ``valid(kind, i)`` is a file name and content it accepts (synthetic patients only);
``name(kind, stem)`` a name its pattern matches. :func:`run_adapter` runs one in a thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.mllp.client import synthetic_adt
from tests.conftest import FIXTURES
from tests.helpers import CSV_SPEC, fnr

KINDS = ("hl7-file", "kith-file", "csv")
KITH = (FIXTURES / "kith_adapter" / "sarepta_svarrapport-v1.4_biokjemi_ny.xml").read_bytes()


@dataclass
class Runtime:
    bus: Any
    keys: Any = None


def settings(kind: str, root: Path, **extra: Any) -> Any:
    base = {
        "directory": str(root / "in"),
        "stable_seconds": 0,
        "poll_interval": 0.05,
        "incomplete_grace_seconds": 0,
        **extra,
    }
    if kind == "hl7-file":
        from adapters.hl7_file import Settings as Hl7

        return Hl7.model_validate({"type": "hl7-file", "source_system": "lab", **base})
    if kind == "kith-file":
        from adapters.kith_file import Settings as Kith

        return Kith.model_validate({"outbox": str(root / "out"), "sender_her_id": "12345", **base})
    from adapters.csv import Settings as Csv

    return Csv.model_validate({"spec": CSV_SPEC, **base})


def adapter(kind: str, root: Path, bus: Any, **extra: Any) -> Any:
    from engine import registry

    a = registry.adapter(kind).build(f"{kind}-t", settings(kind, root, **extra), Runtime(bus))
    a.settings.ensure_dirs()  # run() creates them; check() creates nothing
    a.check()
    return a


def name(kind: str, stem: str) -> str:
    return f"{stem}.{'csv' if kind == 'csv' else 'hl7' if kind == 'hl7-file' else 'xml'}"


def valid(kind: str, i: int) -> tuple[str, bytes]:
    """A file the adapter accepts: one message, or one CSV row (synthetic national id)."""
    if kind == "hl7-file":
        return name(kind, f"good{i}"), synthetic_adt(i)
    if kind == "kith-file":
        return name(kind, f"good{i}"), KITH.replace(b"<MsgId>", f"<MsgId>T{i}-".encode(), 1)
    return name(kind, f"good{i}"), f"id;fnr;kode;navn;dato\nR{i};{fnr(i)};A;Test;01.01.2026\n".encode()


def drop(directory: Path, file: str, data: bytes) -> Path:
    """Write then rename, as a careful sender does."""
    tmp = directory / (file + ".part")
    tmp.write_bytes(data)
    return tmp.rename(directory / file)


def wait(pred: Callable[[], bool], limit: float = 30.0) -> bool:
    deadline = time.monotonic() + limit
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextlib.contextmanager
def run_adapter(a: Any) -> Iterator[threading.Thread]:
    """Run ``a`` in a thread; on exit stop it and check it ended (it never died on its own)."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            a.run(stop)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    t = threading.Thread(target=target, name="adapter-under-test", daemon=True)
    t.start()
    try:
        yield t
    finally:
        stop.set()
        t.join(20)
    assert not errors, errors
    assert not t.is_alive(), "adapter did not stop"


def archived(a: Any) -> list[str]:
    return sorted(p.name for p in a.settings.archive.iterdir() if not p.name.endswith((".reason", ".rejects.csv")))


def mapper_options(a: Any) -> Callable[[str], dict[str, Any]]:
    fn = getattr(a.settings, "mapping_options", None)
    return (lambda _name: fn()) if fn is not None else (lambda _name: {})
