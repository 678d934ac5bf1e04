"""A tiny mapping for pipeline tests: ``P|<fnr>|<local>|<n>|<value>`` -> Person + Observation + link.

It keeps bus/worker/store tests independent of the real message families. ``BAD...`` is rejected.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine import ids
from engine.errors import MappingError
from engine.model import Coding, Identifier, IdentityLink, MapContext, MappingResult, Observation, Person

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def map_message(raw: bytes, ctx: MapContext) -> MappingResult:
    parts = raw.decode().split("|")
    if parts[0] != "P" or len(parts) != 5:
        raise MappingError("not a test message", code="TEST_BAD_MESSAGE")
    _, fnr, local, n, value = parts
    subject = Identifier(system=ids.OID_FNR, value=fnr, kind="FNR")
    loc = Identifier(system=ids.OID_LOCAL_PREFIX + "TEST", value=local, kind="LOCAL")
    t = T0 + timedelta(seconds=int(n))
    prov = ctx.provenance(f"msg-{n}")
    return MappingResult(
        records=(
            Person(
                key=f"person:{subject.key}",
                subject=subject,
                event_time=T0,
                provenance=prov,
                identifiers=(subject, loc),
                family_name="Testesen",
            ),
            Observation(
                key=f"test|{n}",
                subject=loc,
                event_time=t,
                provenance=prov,
                code=Coding(code="NPU02593"),
                value_num=float(value),
            ),
        ),
        links=(IdentityLink(a=loc, b=subject),),
        message_type="TEST",
        source_message_id=f"msg-{n}",
    )
