"""What every HL7 v2 mapping needs besides its segments: the message scope and its times.

:class:`Source` carries the parsed message, the sending facility (MSH-4.1, else MSH-3.1, else the
adapter's source system) used to scope keys and local identifiers, the provenance
(``source_message_id`` = MSH-10) and the message event time (EVN-2, else EVN-6, else MSH-7; when
all are missing or unreadable, ``ctx.received_at`` with the flag ``EVENT_TIME_FROM_RECEIPT``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from engine.errors import ParseError
from engine.model import Identifier, MapContext, Provenance
from mappings.hl7v2.message import Message, Segment
from mappings.hl7v2.timeutil import first_time


@dataclass
class Source:
    """The message being mapped and the facts derived once from its MSH/EVN."""

    msg: Message
    ctx: MapContext
    msh: Segment
    facility: str
    control_id: str
    event: str
    prov: Provenance
    event_time: datetime
    flags: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, msg: Message, ctx: MapContext) -> Source:
        msh = msg.segments[0]
        facility = msh.get(4) or msh.get(3) or ctx.source_system or ctx.adapter
        control = msh.get(10)
        evn = msg.segment("EVN")
        t = first_time(evn.get(2), evn.get(6)) if evn is not None else None
        t = t or first_time(msh.get(7))
        flags: tuple[str, ...] = ()
        if t is None:
            t, flags = ctx.received_at, ("EVENT_TIME_FROM_RECEIPT",)
        return cls(
            msg=msg,
            ctx=ctx,
            msh=msh,
            facility=facility.strip(),
            control_id=control,
            event=msh.get(9, 2).upper(),
            prov=ctx.provenance(source_message_id=control),
            event_time=t,
            flags=flags,
        )

    def key(self, kind: str, *parts: str) -> str:
        """``hl7v2|<facility>|<kind>|<parts...>``: a record key scoped to the sending facility."""
        return "|".join(("hl7v2", self.facility, kind, *parts))

    def require(self, seg_id: str) -> Segment:
        """The first ``seg_id`` segment, or ParseError ``HL7_NO_<SEG>``."""
        seg = self.msg.segment(seg_id)
        if seg is None:
            raise ParseError(f"{seg_id} segment missing", code=f"HL7_NO_{seg_id}")
        return seg


def digest(ident: Identifier) -> str:
    """A short stable token for an identifier (keys reach logs, numbers must not)."""
    return _digest(ident.key)


@lru_cache(maxsize=4096)
def _digest(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
