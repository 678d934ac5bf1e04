"""What creating a small file costs on the work directory's filesystem, measured where the file paths run.

The KITH path writes one AppRec file per message it receives, so its figure moves with this cost. On
this development machine's root filesystem (ext4 without a journal) the cost is not constant: with no
journal, ext4 skips the inodes deleted in the last one to five minutes when it allocates a new one (the
kernel's ``recently_deleted()``, 60 s, or 300 s while the inode table block is dirty), reading their
inode table blocks one by one. After a few thousand files were deleted nearby (a previous bench run's
work directory, a test run), creating one file took 0.5-1.2 ms of CPU, against 15-30 µs in a quiet
directory of the same filesystem. A journalled filesystem never makes that check.

:func:`probe` runs right before the KITH path and its figure is printed in that path's note. It does not
delete what it creates (a deletion would slow the paths that follow); the run's work directory goes at
the end of the run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DiskProbe:
    files: int
    cpu_s: float  # this thread's CPU time
    wall_s: float
    size: int = 2048  # bytes per file

    @property
    def cpu_us(self) -> float:
        """CPU µs to create, write and close one file."""
        return self.cpu_s / max(self.files, 1) * 1e6

    def note(self) -> str:
        return f"creating a file of {self.size:,} bytes here cost {self.cpu_us:,.0f} µs CPU (bench/disk.py)"


def probe(directory: Path, files: int = 200, size: int = 2048) -> DiskProbe:
    """Create ``files`` new files of ``size`` bytes in ``directory`` (made if missing; the files must
    not exist) and time it."""
    directory.mkdir(parents=True, exist_ok=True)
    data = b"x" * size
    c0, t0 = time.thread_time(), time.perf_counter()
    for i in range(files):
        fd = os.open(directory / f"probe-{i:05d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return DiskProbe(files, time.thread_time() - c0, time.perf_counter() - t0, size)
