"""What the worker made of each envelope, and what the store made of a batch of them.

The worker maps every envelope of a batch to an :class:`Outcome` (a mapping result, or a dead-letter reason)
and hands the batch to :meth:`engine.store.journal.Store.commit_batch`, which answers with the
:class:`BatchStats` of the one transaction that wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.envelope import Envelope
from engine.model import MappingResult


@dataclass(frozen=True)
class Outcome:
    """What the worker made of one envelope: a mapping result, or a dead-letter reason."""

    envelope: Envelope
    result: MappingResult | None = None
    reason_code: str | None = None
    reason: str | None = None

    @property
    def dead(self) -> bool:
        return self.reason_code is not None


@dataclass
class BatchStats:
    envelopes: int = 0
    versions_new: int = 0
    versions_unchanged: int = 0
    dead_letters: int = 0
    new_edges: int = 0
    #: attachments stored by this batch (one per sha256 not stored before)
    attachments_new: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    #: envelopes the store dead-lettered itself (isolated after a failed commit), as dead outcomes
    rejected: list[Outcome] = field(default_factory=list)

    def add(self, other: BatchStats) -> BatchStats:
        self.envelopes += other.envelopes
        self.versions_new += other.versions_new
        self.versions_unchanged += other.versions_unchanged
        self.dead_letters += other.dead_letters
        self.new_edges += other.new_edges
        self.attachments_new += other.attachments_new
        for kind, n in other.by_kind.items():
            self.by_kind[kind] = self.by_kind.get(kind, 0) + n
        self.rejected.extend(other.rejected)
        return self
