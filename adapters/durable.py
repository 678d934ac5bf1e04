"""Durable file writes, many at a time: each file is written to ``<name>.tmp``, the ``.tmp`` files are
fsynced concurrently, then renamed into place, then each target directory is fsynced once.

Why concurrently: one fsync per file in a row costs a filesystem journal commit each (1.5-2.6 ms per
small file on this machine with the database busy); fsyncs issued together are committed together by
the journal (ext4/xfs group commit), 0.14-0.26 ms per file for 200 files. A reader never sees half a
file (rename after fsync), and a file that fails does not stop the others: :meth:`DurableWriter.write_all`
returns a path or the exception for each item.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

FSYNC_THREADS = 16
_OPEN_AT_ONCE = 256  # files open at the same time (well under the usual limit of 1024 descriptors)


class DurableWriter:
    """Owns the fsync threads (started on first use); :meth:`close` stops them."""

    def __init__(self, threads: int = FSYNC_THREADS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fsync")

    def write_all(self, items: Sequence[tuple[Path, bytes]]) -> list[Path | OSError]:
        """Write every ``(target, data)`` durably and atomically; the result per item, in order."""
        out: list[Path | OSError] = []
        for i in range(0, len(items), _OPEN_AT_ONCE):
            out.extend(self._write_chunk(items[i:i + _OPEN_AT_ONCE]))
        return out

    def _write_chunk(self, items: Sequence[tuple[Path, bytes]]) -> list[Path | OSError]:
        fds: list[int | OSError] = [_write_tmp(target, data) for target, data in items]
        open_fds = [fd for fd in fds if isinstance(fd, int)]
        if len(open_fds) > 1:
            synced = list(self._pool.map(_fsync_close, open_fds))
        else:
            synced = [_fsync_close(fd) for fd in open_fds]
        sync_error = dict(zip(open_fds, synced))
        out: list[Path | OSError] = []
        for (target, _data), fd in zip(items, fds):
            if isinstance(fd, OSError):
                out.append(fd)
            elif (err := sync_error[fd]) is not None:
                _unlink(_tmp(target))
                out.append(err)
            else:
                out.append(_rename(target))
        for directory in {r.parent for r in out if isinstance(r, Path)}:
            fsync_dir(directory)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def write_file(target: Path, data: bytes) -> Path:
    """One file, durably and atomically (``.tmp`` + fsync + rename + directory fsync); raises OSError."""
    fd = _write_tmp(target, data)
    if isinstance(fd, OSError):
        raise fd
    if (err := _fsync_close(fd)) is not None:
        _unlink(_tmp(target))
        raise err
    result = _rename(target)
    if isinstance(result, OSError):
        raise result
    fsync_dir(target.parent)
    return result


def _tmp(target: Path) -> Path:
    return target.with_name(target.name + ".tmp")


def _write_tmp(target: Path, data: bytes) -> int | OSError:
    try:
        fd = os.open(_tmp(target), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        return exc
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        os.close(fd)
        _unlink(_tmp(target))
        return exc
    return fd


def _fsync_close(fd: int) -> OSError | None:
    try:
        os.fsync(fd)
        return None
    except OSError as exc:
        return exc
    finally:
        os.close(fd)


def _rename(target: Path) -> Path | OSError:
    try:
        os.replace(_tmp(target), target)
        return target
    except OSError as exc:
        _unlink(_tmp(target))
        return exc


def fsync_dir(directory: Path) -> None:
    """Make the renames durable (best effort: not every platform can fsync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
