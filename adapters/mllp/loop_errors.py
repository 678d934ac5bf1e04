"""The listener's event-loop exception handler: asyncio's own error reports through structlog, by type only.

asyncio reports what nobody awaited (a task's or future's exception, a transport's fatal error) to the
loop's exception handler, whose default prints the message and a full traceback through the stdlib logger,
past structlog's masking processor; an exception's text may quote message content. Here each report
becomes one ``mllp.loop_error`` event with the exception's type and no text; a repeat of the same type
within ``QUIET_SECONDS`` is only counted, and the count rides on the next line of that type.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

log = structlog.get_logger("adapters.mllp")


class LoopErrors:
    """Install with ``loop.set_exception_handler(LoopErrors(name))``."""

    QUIET_SECONDS = 60.0

    def __init__(self, adapter: str) -> None:
        self.adapter = adapter
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        kind = type(exc).__name__ if exc is not None else "none"
        now = time.monotonic()
        if now - self._last.get(kind, -self.QUIET_SECONDS) < self.QUIET_SECONDS:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last[kind] = now
        log.error("mllp.loop_error", adapter=self.adapter, error=kind, suppressed=self._suppressed.pop(kind, 0))
