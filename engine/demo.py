"""The ``make run`` demo: sample files from several systems into one journal, on the embedded default."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from engine.config import load_config
from engine.journal_view import JournalView, load_journal
from engine.plugin import AdapterSettings, InboxSettings
from engine.runtime import Runtime

DEMO_DIR = Path(__file__).resolve().parent.parent / "deploy" / "demo"
#: the demo citizen: a synthetic number (month + 80), not a real person's
DEMO_CITIZEN = "13916910082"


def run_demo(timeout: float = 120.0) -> JournalView:
    """Copy the samples into the demo's inboxes (paths relative to the current directory) and ingest them."""
    cfg = load_config(DEMO_DIR / "enjournal.yaml")
    for name, settings in cfg.adapters.items():
        src = DEMO_DIR / "inbox" / name
        inbox = _inbox(settings)
        inbox.mkdir(parents=True, exist_ok=True)
        for f in sorted(src.glob("*")) if src.is_dir() else []:
            if f.is_file():
                shutil.copy2(f, inbox / f.name)
    rt = Runtime.build(cfg)
    rt.start()
    try:
        _wait_until_ingested(rt, timeout)
    finally:
        rt.shutdown(30)
    store_rt = Runtime.build(cfg, declare=False)
    try:
        view = load_journal(store_rt.store, DEMO_CITIZEN)
    finally:
        store_rt.close()
    if view is None:
        raise SystemExit("demo: the demo citizen is not in the journal (see var/demo/in/*/error)")
    return view


def _wait_until_ingested(rt: Runtime, timeout: float) -> None:
    end = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < end:
        pending = sum(1 for s in rt.config.adapters.values() for p in _inbox(s).glob("*") if p.is_file())
        depth = rt.bus.depth().get("work", 0)
        quiet = quiet + 1 if pending == 0 and depth == 0 else 0
        if quiet >= 4:
            return
        threading.Event().wait(0.25)


def _inbox(settings: AdapterSettings) -> Path:
    """The directory an adapter of the demo reads (each of them is a file adapter)."""
    if not isinstance(settings, InboxSettings):
        raise SystemExit(f"demo: adapter type {settings.type!r} reads no directory")
    return settings.directory
