"""Peak resident memory: of this process (``ru_maxrss``) and of another one (``VmHWM`` in /proc).

The engine subprocess of each path reports its own ``ru_maxrss`` and the parent reads the child's
rusage from ``os.wait4``; :func:`vm_hwm_kb` reads a still-running process. All in KiB (Linux).
"""

from __future__ import annotations

import resource
from pathlib import Path


def self_peak_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def vm_hwm_kb(pid: int) -> int:
    """Peak RSS so far of ``pid`` (0 when it is gone or /proc is not there)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
