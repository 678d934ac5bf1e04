"""Builders for canonical records and envelopes used across tests (synthetic identities only)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine import ids
from engine.envelope import Envelope
from engine.model import Coding, Identifier, IdentityLink, MappingResult, Observation, Person, Provenance, RecordStatus
from engine.outcome import Outcome

if TYPE_CHECKING:
    from engine.bus.rabbit import RabbitBus

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def fnr(i: int) -> str:
    """The i-th synthetic FNR (month + 80, valid mod 11)."""
    n = 0
    for ind in range(1000):
        for day in range(1, 29):
            v = ids.synthetic_fnr(day, 1 + (ind % 12), 1950 + (ind % 50), (ind * 7 + day) % 500)
            if v is None:
                continue
            if n == i:
                return v
            n += 1
    raise ValueError(i)


def fnr_id(i: int) -> Identifier:
    return Identifier(system=ids.OID_FNR, value=fnr(i), kind="FNR")


def local_id(v: str, scope: str = "HOSP") -> Identifier:
    return Identifier(system=ids.OID_LOCAL_PREFIX + scope, value=v, kind="LOCAL")


def prov(env_id: str = "e1") -> Provenance:
    return Provenance(adapter="test", envelope_id=env_id, source_message_id="m-" + env_id)


def observation(
    key: str,
    subject: Identifier,
    value: float,
    minutes: int = 0,
    status: RecordStatus = RecordStatus.FINAL,
    env_id: str = "e1",
) -> Observation:
    return Observation(
        key=key,
        subject=subject,
        event_time=T0 + timedelta(minutes=minutes),
        status=status,
        provenance=prov(env_id),
        code=Coding(system="2.16.578.1.12.4.1.1.7280", code="NPU02593"),
        value_type="NM",
        value_num=value,
        unit="10*9/L",
    )


def person(
    subject: Identifier,
    family: str = "Testesen",
    minutes: int = 0,
    env_id: str = "e1",
    others: tuple[Identifier, ...] = (),
) -> Person:
    return Person(
        key=f"person:{subject.key}",
        subject=subject,
        event_time=T0 + timedelta(minutes=minutes),
        provenance=prov(env_id),
        identifiers=(subject, *others),
        family_name=family,
        given_name="Kari",
    )


def envelope(env_id: str, raw: bytes = b"x", adapter: str = "test", dedup: str | None = None) -> Envelope:
    return Envelope.build(raw, adapter=adapter, mapping="test", content_type="text/plain", id=env_id, dedup_key=dedup)


def outcome(env_id: str, records: list, links: list[IdentityLink] | None = None) -> Outcome:
    return Outcome(envelope(env_id), result=MappingResult(records=tuple(records), links=tuple(links or ())))


def ack_codes(found: dict[str, dict[str, tuple[str, str]]]) -> dict[str, str]:
    """``{dedup_key: ack_code}`` from a ``processed_versions`` answer (each key must hold one content)."""
    assert all(len(v) == 1 for v in found.values()), "a key stored with several contents"
    return {key: ack for key, v in found.items() for _envelope_id, ack in v.values()}


def ack_code(store: Any, dedup_key: str) -> str | None:
    """The ACK code stored for ``dedup_key`` (None: not stored), through ``Store.processed_versions``."""
    return ack_codes(store.processed_versions([dedup_key])).get(dedup_key)


def unreachable_rabbit_bus(amqp_names: dict[str, str], connect_timeout: float) -> RabbitBus:
    """A RabbitBus whose broker URL points at a local port nobody listens on."""
    from engine.bus.rabbit import RabbitBus
    from engine.config import RabbitBusConfig

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    return RabbitBus(
        RabbitBusConfig(url=f"amqp://guest@127.0.0.1:{dead_port}/%2F", **amqp_names), connect_timeout=connect_timeout
    )


#: the declarative spec of the test CSV exports (``id;fnr;kode;navn;dato``): one care event per row
CSV_SPEC: dict[str, Any] = {
    "kind": "care_event",
    "source": "test.vedtak",
    "key": ["id"],
    "subject": {"national": "fnr", "scope": "kommune"},
    "event_time": "dato",
    "fields": {"event_code": {"column": "kode", "system": "urn:test"}, "description": "navn"},
}
