"""Fuzzing (hypothesis): mutated fixture messages and random bytes either map or raise PermanentError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import ids
from engine.errors import PermanentError
from mappings.hl7v2 import map_message
from mappings.hl7v2.parser import parse_header, split_messages
from tests.unit.hl7v2.conftest import HL7_FIXTURES, make_ctx

SEEDS = [p.read_bytes() for p in sorted(HL7_FIXTURES.glob("*.hl7"))]
NOISE = st.sampled_from(
    [
        b"|",
        b"^",
        b"~",
        b"\\",
        b"&",
        b"\r",
        b"\n",
        b'""',
        b"MSH|",
        b"PID|",
        b"OBX|",
        b"\xff",
        b"\xc3",
        b"\\X0\\",
        b"\\.br",
        b"A40",
        b"+9999",
        b"99999999999999",
    ]
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(NOISE)
        if op == "insert":
            data[pos:pos] = chunk
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 40))]
        else:
            data[pos : pos + len(chunk)] = chunk
    return bytes(data)


def _check(raw: bytes) -> None:
    try:
        map_message(raw, make_ctx())
    except PermanentError as exc:
        assert exc.code.isupper()
        assert not ids.find_valid_numbers(str(exc)), "an identity number leaked into an error message"
    for fn in (parse_header, split_messages):
        try:
            fn(raw)
        except PermanentError as exc:
            assert not ids.find_valid_numbers(str(exc))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_never_crash(raw: bytes) -> None:
    _check(raw)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(raw: bytes) -> None:
    _check(b"MSH|^~\\&|" + raw)
    _check(raw)
