"""Giving memory back to the system after connections that held big partial frames went away.

A partial frame's buffer is freed when its connection closes, but glibc's allocator keeps freed heap
memory for reuse, so without a trim the listener's RSS stays at the peak that many big open frames
reached. :class:`Trim` calls ``malloc_trim(0)`` once, a moment after such a connection closed (at most
once per ``delay`` seconds however many close), so the RSS goes back down. Where the C library has no
``malloc_trim`` (not glibc) it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
        return trim
    except (OSError, AttributeError):
        return None


class Trim:
    """See the module docstring; :meth:`released` is called with the bytes a closing connection held."""

    def __init__(self, min_bytes: int = 64 * 1024, delay: float = 1.0) -> None:
        self.min_bytes, self.delay = min_bytes, delay
        self._trim = _malloc_trim()
        self._scheduled: asyncio.TimerHandle | None = None

    def released(self, nbytes: int) -> None:
        if nbytes >= self.min_bytes and self._trim is not None and self._scheduled is None:
            self._scheduled = asyncio.get_running_loop().call_later(self.delay, self._run)

    def _run(self) -> None:
        self._scheduled = None
        if self._trim is not None:
            self._trim(0)

    def cancel(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
