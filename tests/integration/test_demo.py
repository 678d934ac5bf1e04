"""`make run`: the demo ingests HL7, KITH and CSV samples on the embedded default into one journal."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import REPO


def test_demo_prints_one_unified_journal() -> None:
    shutil.rmtree(REPO / "var" / "demo", ignore_errors=True)
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", "demo"], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Citizen FNR 13916910082" in r.stdout
    for source in ("hl7", "lab-kith", "gp-patient-list"):
        assert source in r.stdout
    assert "Traceback" not in r.stderr
