"""engine.bus.wire: the envelope in the message body, the older header form, damaged bodies."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.bus import wire
from engine.envelope import Envelope


def _env() -> Envelope:
    return Envelope.build(
        b"MSH|^~\\&|A|B\rPID|1\r",
        adapter="lab",
        mapping="hl7v2",
        content_type="application/hl7-v2",
        charset="8859/1",
        dedup_key="HL7|A|B|1",
        attributes={"file": "x.hl7", "index": "0"},
        received_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_round_trip() -> None:
    env = _env()
    assert wire.decode(wire.ENVELOPE_TYPE, None, wire.encode(env)) == env


def test_older_header_form_still_decodes() -> None:
    env = _env()
    headers = {k: (v.encode() if isinstance(v, str) else v) for k, v in env.headers().items() if v is not None}
    assert wire.decode("application/hl7-v2", headers, env.raw) == env


def test_damaged_body_becomes_a_rejected_envelope_keeping_the_bytes() -> None:
    body = wire.encode(_env())
    for damaged in (body[:3], b"\x00\x00\x10\x00{}", b"\x00\x00\x00\x02[]" + b"raw", body[:20]):
        env = wire.decode(wire.ENVELOPE_TYPE, None, damaged)
        assert env.rejection is not None and env.rejection.code == "BAD_ENVELOPE" and env.raw == damaged


def _envs(n: int) -> list[Envelope]:
    return [
        Envelope.build(
            b"MSH|^~\\&|A|B|||||ORU^R01|%d\r" % i,
            adapter="lab",
            mapping="hl7v2",
            content_type="application/hl7-v2",
            dedup_key=f"HL7|A|B|{i}",
            received_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        )
        for i in range(n)
    ]


def test_frame_round_trip_keeps_every_envelope_in_order() -> None:
    envs = _envs(5)
    assert wire.decode_all(wire.FRAME_TYPE, None, wire.encode_frame(envs)) == envs


def test_decode_all_reads_single_envelopes_and_the_header_form() -> None:
    env = _env()
    assert wire.decode_all(wire.ENVELOPE_TYPE, None, wire.encode(env)) == [env]
    headers = {k: v for k, v in env.headers().items() if v is not None}
    assert wire.decode_all("application/hl7-v2", headers, env.raw) == [env]


def test_damaged_frame_becomes_one_rejected_envelope_keeping_the_whole_body() -> None:
    body = wire.encode_frame(_envs(3))
    for damaged in (
        body[:2],
        body[:-1],
        body + b"x",
        b"\x00\x00\x00\x00",
        b"\x00\x00\x00\x01\x00\x00\x00\x02ab",
        b"\x00\x00\x00\x02" + body[4:],
    ):
        out = wire.decode_all(wire.FRAME_TYPE, None, damaged)
        assert (
            len(out) == 1
            and out[0].rejection is not None
            and out[0].rejection.code == "BAD_ENVELOPE"
            and out[0].raw == damaged
        )
