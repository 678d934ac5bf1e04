"""A rejection is a typed value on the envelope: through headers and the wire, and from the previous version's
``reject`` attribute."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from engine.envelope import Envelope
from engine.rejection import LEGACY_CODE, Rejection
from engine.worker import Mapper


def _env(**kw: object) -> Envelope:
    return Envelope.build(b"MSH|", adapter="a", mapping="hl7v2", content_type="x", **kw)  # type: ignore[arg-type]


def test_text_form() -> None:
    assert str(Rejection(code="HL7_NO_MSH", text="no MSH segment found")) == "HL7_NO_MSH: no MSH segment found"
    assert str(Rejection(code="HL7_NO_MSH", text="")) == "HL7_NO_MSH"


@pytest.mark.parametrize("code", ["", "hl7", "1ABC", "A B", "A-B", "ÅB"])
def test_code_is_a_reason_code(code: str) -> None:
    with pytest.raises(ValidationError):
        Rejection(code=code, text="x")


def test_frozen_and_closed() -> None:
    r = Rejection(code="X", text="y")
    with pytest.raises(ValidationError):
        r.code = "Z"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Rejection(code="X", text="y", extra="z")  # type: ignore[call-arg]


def test_headers_carry_it_only_when_set() -> None:
    assert "rejection" not in _env().headers()
    env = _env(rejection=Rejection(code="HL7_BAD_MSH", text="MSH too short"), attributes={"file": "f"})
    h = env.headers()
    assert orjson.loads(h["rejection"]) == {"code": "HL7_BAD_MSH", "text": "MSH too short"}
    back = Envelope.from_headers(h, env.raw)
    assert back == env and back.rejection == env.rejection


def test_legacy_reject_attribute_becomes_the_rejection() -> None:
    h = _env(attributes={"file": "f", "reject": "KITH_EMPTY: the document is empty"}).headers()
    env = Envelope.from_meta(h, b"")
    assert env.rejection == Rejection(code="KITH_EMPTY", text="the document is empty")
    assert env.attributes == {"file": "f"}
    odd = Envelope.from_meta(_env(attributes={"reject": "not a code: x"}).headers(), b"")
    assert odd.rejection == Rejection(code=LEGACY_CODE, text="not a code: x")


def test_worker_dead_letters_with_the_code_and_the_same_reason_text() -> None:
    outcome = Mapper()(_env(rejection=Rejection(code="HL7_UNSUPPORTED_TYPE", text="message type ORM is not accepted")))
    assert outcome.dead
    assert (outcome.reason_code, outcome.reason) == (
        "HL7_UNSUPPORTED_TYPE",
        "HL7_UNSUPPORTED_TYPE: message type ORM is not accepted",
    )
