"""Durable file writes, many at a time: every file is written to a temporary file beside it, the data is
made durable, then each file is renamed into place, then each target directory is fsynced once.

The temporary file (:func:`create_temp`, also used by :mod:`adapters.files` for ``.reason`` files) has an
unpredictable hidden name (``.<name>.<random>.tmp``) and is created exclusively without following a link
(``O_EXCL | O_NOFOLLOW``): nothing planted under a name, a symlink or a hard link, is ever written through
or truncated.

How the data is made durable, by :class:`Sync`:

* ``syncfs`` (the default on Linux >= 5.8): one ``syncfs(2)`` of the filesystem after all the files of
  the batch are written: one journal commit for the whole batch, from one thread, which costs less CPU
  per file than ``fsync``'s threads and their wake-ups. Linux reports writeback errors through
  ``syncfs`` only since 5.8, so older kernels (and other systems) use ``fsync``.
* ``fsync``: each file fsynced by a pool of threads. One fsync per file in a row costs a journal commit
  each; fsyncs issued together are committed together (ext4/xfs group commit). Use it when the outbox
  shares a filesystem with a busy database, whose dirty pages a ``syncfs`` would wait for too.

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
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
        fn = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).syncfs
    except (OSError, AttributeError, ValueError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
    syncfs: Callable[[int], int] = fn
    return syncfs


_SYNCFS = _load_syncfs()


class DurableWriter:
    """Writes batches of files durably; in ``fsync`` mode it owns the fsync threads, which :meth:`close` stops."""

    def __init__(self, threads: int = FSYNC_THREADS, sync: Sync = Sync.AUTO) -> None:
        if sync is Sync.SYNCFS and _SYNCFS is None:
            raise ValueError("syncfs with error reporting needs Linux 5.8 or later")
        self.sync = sync if sync is not Sync.AUTO else (Sync.SYNCFS if _SYNCFS is not None else Sync.FSYNC)
        self._pool = (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fsync") if self.sync is Sync.FSYNC else None
        )

    def write_all(self, items: Sequence[tuple[Path, bytes]]) -> list[Path | OSError]:
        """Write every ``(target, data)`` durably and atomically; the result per item, in order."""
        if self.sync is Sync.SYNCFS and len(items) > 1:
            staged = _write_then_syncfs(items)
        elif self._pool is not None and len(items) > 1:
            staged = list(self._pool.map(_stage, items))
        else:
            staged = [_stage(item) for item in items]
        out = [
            _rename(tmp, target) if isinstance(tmp, str) else tmp
            for (target, _d), tmp in zip(items, staged, strict=True)
        ]
        for directory in {r.parent for r in out if isinstance(r, Path)}:
            _fsync_dir(directory)
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def write_file(target: Path, data: bytes, mode: int = 0o644, sync: bool = True) -> Path:
    """One file, atomically (temporary file + fsync + rename + directory fsync; without ``sync`` only the
    temporary file and the rename: never half a file, not necessarily durable); raises OSError."""
    staged = _stage((target, data), mode, fsync=sync)
    result = _rename(staged, target) if isinstance(staged, str) else staged
    if isinstance(result, OSError):
        raise result
    if sync:
        _fsync_dir(target.parent)
    return result


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def create_temp(target: Path, mode: int = 0o644) -> tuple[int, str]:
    """A new, empty temporary file beside ``target`` (see the module docstring): its descriptor and path.
    A name that is taken (by chance, or planted) is never opened: another one is drawn."""
    for _ in range(100):
        tmp = os.path.join(target.parent, f".{target.name}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, _CREATE, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name")


def _write_then_syncfs(items: Sequence[tuple[Path, bytes]]) -> list[str | OSError]:
    """Write every temporary file, then one ``syncfs`` per directory's filesystem; the result per item."""
    staged = [_stage(item, fsync=False) for item in items]
    for directory in {target.parent for (target, _d), tmp in zip(items, staged, strict=True) if isinstance(tmp, str)}:
        failure = _syncfs(directory)
        if failure is None:
            continue
        for i, ((target, _d), tmp) in enumerate(zip(items, staged, strict=True)):
            if isinstance(tmp, str) and target.parent == directory:
                _unlink(tmp)
                staged[i] = failure
    return staged


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


def _stage(item: tuple[Path, bytes], mode: int = 0o644, fsync: bool = True) -> str | OSError:
    """Write the data to a new temporary file beside the target (and fsync it): its path, or the error
    (the temporary file removed)."""
    target, data = item
    try:
        fd, tmp = create_temp(target, mode)
    except OSError as exc:
        return exc
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    except OSError as exc:
        _unlink(tmp)
        return exc
    finally:
        os.close(fd)
    return tmp


def _rename(tmp: str, target: Path) -> Path | OSError:
    try:
        os.replace(tmp, target)
        return target
    except OSError as exc:
        _unlink(tmp)
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


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
