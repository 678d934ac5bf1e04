"""``--hl7-big-mb N``: peak RSS of the HL7 file adapter handling one N MB file, on the real RabbitMQ.

The adapter alone runs in a process of its own: this file run as a script
(``python bench/big_hl7.py CONFIG FILE STATS_JSON``) builds the ``hl7-file`` adapter of CONFIG as
``enjournal run`` does, handles the one file, and writes its peak RSS (``VmHWM``, see :mod:`bench.rss`),
the seconds it took and whether the file reached ``archive/``. No worker runs: what is measured is the
intake (read, split, triage, publish with confirms). The queues are deleted afterwards.

``--hl7-big-repo PATH`` runs the adapter of another checkout (e.g. a worktree of main) with the same
file, to compare before and after: the script imports ``adapters``/``engine`` from PATH first.
The file is ORU^R01 messages of the bench's data (8 OBX, about 1 KB each), one after the other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: the child's own copy of bench.rss.vm_hwm_kb: it may import another checkout, whose bench differs
_HWM = "VmHWM:"


def _peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(_HWM):
            return int(line.split()[1])
    return 0


def write_file(path: Path, mb: int, pats: list[Any], seed: int = 42) -> int:
    """ORU^R01 messages until the file holds ``mb`` MB; the number of messages."""
    from bench import data

    path.parent.mkdir(parents=True, exist_ok=True)
    target, size, n = mb * 1_000_000, 0, 0
    with path.open("wb") as f:
        while size < target:
            chunk = b"".join(data.oru_r01(n + k, pats[(n + k) % len(pats)], seed=seed) + b"\n" for k in range(1000))
            f.write(chunk)
            size += len(chunk)
            n += 1000
    return n


def measure(mb: int, workdir: Path, pats: list[Any], repo: Path | None = None, timeout: float = 900.0) -> Any:
    """Generate the file, run the adapter on it in a child process, return a :class:`bench.paths.PathResult`."""
    import yaml

    from bench.paths import PathResult, cleanup
    from bench.proc import rabbit_section, tag

    work = workdir / f"hl7-big-{tag()}"
    inbox = work / "in"
    messages = write_file(inbox / "big.hl7", mb, pats)
    size = (inbox / "big.hl7").stat().st_size
    bus = rabbit_section(tag())
    cfg = {
        "bus": bus,
        "store": {"url": f"sqlite:///{work / 'journal.db'}"},
        "adapters": {
            "big": {"type": "hl7-file", "directory": str(inbox), "stable_seconds": 0, "source_system": "bench"}
        },
    }
    (work / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    code_repo = (repo or Path(__file__).resolve().parent.parent).resolve()
    env = {**os.environ, "PYTHONPATH": str(code_repo)}
    out = work / "stats.json"
    try:
        proc = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                str(work / "config.yaml"),
                str(inbox / "big.hl7"),
                str(out),
            ],
            cwd=code_repo,
            env=env,
            timeout=timeout,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            return PathResult(f"hl7-file-big-{mb}MB", 0, note=f"failed: {proc.stderr.strip()[-200:]}")
        st = json.loads(out.read_text(encoding="utf-8"))
    finally:
        cleanup(None, bus)
    rss = st["vm_hwm_kb"] / 1024
    note = (
        f"adapter alone ({'this checkout' if repo is None else code_repo.name}), {size / 1e6:.0f} MB file: "
        f"peak RSS {rss / (size / 2**20):.2f} x file size; archived {st['archived']}"
    )
    return PathResult(f"hl7-file-big-{mb}MB", messages, st["seconds"], rss_mb=rss, note=note)


def _child(config: str, file: str, out: str) -> int:
    """Build the adapter of ``config`` (the code on PYTHONPATH), handle ``file``, write the stats."""
    from adapters.hl7_file import build
    from engine.bus.rabbit import RabbitBus
    from engine.config import load_config

    cfg = load_config(config)
    name, settings = next(iter(cfg.adapters.items()))
    bus = RabbitBus(cfg.bus)
    bus.declare()

    class Runtime:
        def __init__(self) -> None:
            self.bus, self.keys = bus, None

    adapter = build(name, settings, Runtime())  # type: ignore[arg-type]
    adapter.check()
    t0 = time.perf_counter()
    adapter.handle(Path(file))
    seconds = time.perf_counter() - t0
    bus.close()
    stats = {"vm_hwm_kb": _peak_kb(), "seconds": seconds, "archived": not Path(file).exists()}
    Path(out).write_text(json.dumps(stats), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path[0] = os.environ.get("PYTHONPATH", sys.path[0])  # the measured checkout, not bench/
    sys.exit(_child(*sys.argv[1:4]))
