"""The sequence every adapter follows: publish, wait for the broker's confirm, and only then finish.

Finishing hands the responsibility for a message back from its source to the engine: the ACK (MLLP), the
AppRec and the file's move (KITH), the move of a file to ``archive/`` (HL7 and CSV files). It happens only
once the bus confirmed every envelope it covers. When the bus is unavailable nothing is finished and the
source keeps the message: the sender resends it, the file stays for the next poll.

:class:`Handoff` is each adapter's one way to the bus. Whatever path an adapter takes there (one blocking
publish, one group in flight while the next is read, its event loop's own publisher), the envelopes are
counted as published (``enjournal_envelopes_published``) only once confirmed, and a failure is logged the
same way (``<event>.publish_failed``, with the error's code and counts, never content).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future

import structlog

from engine import metrics
from engine.bus import Bus
from engine.envelope import Envelope
from engine.errors import BusUnavailable, EnjournalError

log = structlog.get_logger(__name__)

#: seconds a confirm may take: a base, and one more per this many envelopes of a large group
CONFIRM_SECONDS, CONFIRMS_PER_SECOND = 30.0, 500


class Confirmation:
    """Envelopes handed to the bus without waiting (:meth:`Handoff.send`); :meth:`wait` for the confirm."""

    def __init__(self, future: Future[None], envelopes: Sequence[Envelope]) -> None:
        self.future, self.envelopes = future, envelopes

    def wait(self) -> None:
        """Return once the broker confirmed every envelope (counted as published); raises
        :class:`BusUnavailable` when it did not, also when the confirm took too long for their number."""
        try:
            self.future.result(CONFIRM_SECONDS + len(self.envelopes) / CONFIRMS_PER_SECOND)
        except TimeoutError:
            raise BusUnavailable("publisher confirms timed out") from None
        metrics.published(self.envelopes)


class Handoff:
    """One adapter's way to the bus (see the module docstring); ``event`` prefixes its log events."""

    def __init__(self, adapter: str, bus: Bus, event: str) -> None:
        self.adapter, self.bus, self.event = adapter, bus, event

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish and return once the broker confirmed every envelope (counted as published); raises
        :class:`BusUnavailable` otherwise, and then nothing of them may be finished."""
        self.bus.publish(envelopes)
        metrics.published(envelopes)

    def send(self, envelopes: Sequence[Envelope]) -> Confirmation:
        """Publish without waiting for the confirm: finish nothing of them before :meth:`Confirmation.wait`
        returned."""
        return Confirmation(self.bus.publish_async(envelopes), envelopes)

    def confirmed(self, envelopes: Iterable[Envelope]) -> None:
        """The broker confirmed ``envelopes`` on a path of the adapter's own (an event loop's publisher):
        count them. Call it before anything of them is finished."""
        metrics.published(envelopes)

    def failed(self, exc: EnjournalError, **counts: object) -> None:
        """Publishing failed and nothing was finished: one warning with the error's code (and ids or counts)."""
        log.warning(f"{self.event}.publish_failed", adapter=self.adapter, code=exc.code, **counts)

    def deliver(self, envelopes: Sequence[Envelope], finish: Callable[[], None], **counts: object) -> bool:
        """Publish ``envelopes`` and, only once the broker confirmed them all, ``finish()``. False when the bus
        is unavailable: logged (:meth:`failed`), nothing finished, the source keeps the messages."""
        if envelopes:
            try:
                self.publish(envelopes)
            except BusUnavailable as exc:
                self.failed(exc, **counts)
                return False
        finish()
        return True


__all__ = ["Confirmation", "Handoff"]
