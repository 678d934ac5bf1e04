"""Durable file writes, many at a time: every file is written to ``<name>.tmp``, the data is made durable,
then each file is renamed into place, then each target directory is fsynced once.

How the data is made durable, by :class:`Sync`:

* ``syncfs`` (the default on Linux >= 5.8): one ``syncfs(2)`` of the filesystem after all the files of
  the batch are written: one journal commit for the whole batch, from one thread. Measured on this
  machine for batches of 200 small files: 44-56 µs of CPU per file against 130-150 for ``fsync``, whose
  sixteen threads also cost the process dozens of futex wake-ups per file. Linux reports writeback
  errors through ``syncfs`` only since 5.8, so older kernels (and other systems) use ``fsync``.
* ``fsync``: each file fsynced by a pool of threads. One fsync per file in a row costs a journal commit
  each (1.5-2.6 ms per small file with the database busy); fsyncs issued together are committed
  together (ext4/xfs group commit), 0.14-0.26 ms per file for 200 files.

A reader never sees half a file (rename after the data is durable), and a file that fails does not
stop the others: :meth:`DurableWriter.write_all` returns a path or the exception for each item.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import errno
import os
import platform
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

FSYNC_THREADS = 16


class Sync(str, enum.Enum):
    AUTO = "auto"
    SYNCFS = "syncfs"
    FSYNC = "fsync"


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs`` where it reports writeback errors (Linux >= 5.8), else None."""
    try:
        major, minor = (int(x) for x in platform.release().split(".")[:2])
        if platform.system() != "Linux" or (major, minor) < (5, 8):
            return None
        fn: Any = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).syncfs
    except (OSError, AttributeError, ValueError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    return fn  # type: ignore[no-any-return]


_SYNCFS = _load_syncfs()


class DurableWriter:
    """Writes batches of files durably; in ``fsync`` mode it owns the fsync threads, which :meth:`close` stops."""

    def __init__(self, threads: int = FSYNC_THREADS, sync: Sync = Sync.AUTO) -> None:
        if sync is Sync.SYNCFS and _SYNCFS is None:
            raise ValueError("syncfs with error reporting needs Linux 5.8 or later")
        self.sync = sync if sync is not Sync.AUTO else (Sync.SYNCFS if _SYNCFS is not None else Sync.FSYNC)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fsync") \
            if self.sync is Sync.FSYNC else None

    def write_all(self, items: Sequence[tuple[Path, bytes]]) -> list[Path | OSError]:
        """Write every ``(target, data)`` durably and atomically; the result per item, in order."""
        if self.sync is Sync.SYNCFS and len(items) > 1:
            synced = _write_then_syncfs(items)
        elif self._pool is not None and len(items) > 1:
            synced = list(self._pool.map(_write_synced, items))
        else:
            synced = [_write_synced(item) for item in items]
        out = [err if err is not None else _rename(target) for (target, _data), err in zip(items, synced)]
        for directory in {r.parent for r in out if isinstance(r, Path)}:
            _fsync_dir(directory)
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def write_file(target: Path, data: bytes, mode: int = 0o644) -> Path:
    """One file, durably and atomically (``.tmp`` + fsync + rename + directory fsync); raises OSError."""
    err = _write_synced((target, data), mode)
    result = err if err is not None else _rename(target)
    if isinstance(result, OSError):
        raise result
    _fsync_dir(target.parent)
    return result


def _tmp(target: Path) -> Path:
    return target.with_name(target.name + ".tmp")


def _write_then_syncfs(items: Sequence[tuple[Path, bytes]]) -> list[OSError | None]:
    """Write every ``<target>.tmp``, then one ``syncfs`` per directory's filesystem; the error per item."""
    errors = [_write_synced(item, fsync=False) for item in items]
    for directory in {target.parent for (target, _d), err in zip(items, errors) if err is None}:
        failure = _syncfs(directory)
        if failure is None:
            continue
        for i, ((target, _d), err) in enumerate(zip(items, errors)):
            if err is None and target.parent == directory:
                _unlink(_tmp(target))
                errors[i] = failure
    return errors


def _syncfs(directory: Path) -> OSError | None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as exc:
        return exc
    try:
        if _SYNCFS is None or _SYNCFS(fd) != 0:
            code = ctypes.get_errno() or errno.EIO
            return OSError(code, f"syncfs failed: {os.strerror(code)}")
        return None
    finally:
        os.close(fd)


def _write_synced(item: tuple[Path, bytes], mode: int = 0o644, fsync: bool = True) -> OSError | None:
    """Write ``<target>.tmp`` (and fsync it); on failure remove it and return the error."""
    target, data = item
    tmp = _tmp(target)
    try:
        # O_NOFOLLOW: never write through a link planted under the temporary name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), mode)
    except OSError as exc:
        return exc
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    except OSError as exc:
        _unlink(tmp)
        return exc
    finally:
        os.close(fd)
    return None


def _rename(target: Path) -> Path | OSError:
    try:
        os.replace(_tmp(target), target)
        return target
    except OSError as exc:
        _unlink(_tmp(target))
        return exc


def _fsync_dir(directory: Path) -> None:
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
