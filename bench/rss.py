"""Peak resident memory (``VmHWM`` in /proc), in KiB (Linux).

Not ``ru_maxrss``: Linux carries a process's peak across fork + exec, so an engine started by a
benchmark holding a 2M-row CSV file in memory reported that benchmark's peak (436 MB) as its own
(its real peak: about 220 MB). The engine subprocess of each path reports its own ``VmHWM``.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path


def self_peak_kb() -> int:
    """Peak RSS of this process; ``ru_maxrss`` where /proc is not there."""
    return vm_hwm_kb(os.getpid()) or int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def vm_hwm_kb(pid: int) -> int:
    """Peak RSS so far of ``pid`` (0 when it is gone or /proc is not there)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
