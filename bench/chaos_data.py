"""The known message set of the fault suite: HL7 v2.5 ADT^A01 / ORU^R01 with synthetic patients.

Every message has a unique MSH-10 (``CHAOS<run>-<n>``) and a patient of its own: a synthetic FNR
(month + 80, valid mod 11) and an invented name, so the log check knows exactly what must never be
printed. A few messages are malformed on purpose, each with the reason code the engine must give:

* ``HL7_NO_PID``: an ORU^R01 without its PID;
* ``HL7_UNSUPPORTED_TYPE``: an ``ZZZ^Z01`` (refused by the adapter's triage, or by the mapping);
* ``HL7_NO_PATIENT_ID``: an ADT^A01 whose PID carries no identifier.

:func:`expected_versions` maps a message in-process with the real mapping; the journal must hold
exactly those ``(record_key, version_hash)`` pairs and nothing else.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from engine import ids
from engine.errors import PermanentError
from engine.model import MapContext
from mappings.hl7v2 import map_message

_FAMILY = ("Brattvold", "Lyngstad", "Fjellkaas", "Solbakmo", "Hagetrud", "Kvernvik", "Ormestue", "Tindeberg")
_GIVEN = ("Ingvild", "Torbrand", "Siglaug", "Ragnhelm", "Aslaug", "Eivindur", "Gudlaug", "Hallvor")
MALFORMED = ("HL7_NO_PID", "HL7_UNSUPPORTED_TYPE", "HL7_NO_PATIENT_ID")


@dataclass(frozen=True)
class Sent:
    """One message of the known set."""

    control_id: str
    raw: bytes
    fnr: str
    family: str
    given: str
    expect_code: str | None = None  # a reason code: the message must end in the dead letters

    @property
    def malformed(self) -> bool:
        return self.expect_code is not None


@dataclass
class MessageSet:
    run: str
    messages: list[Sent] = field(default_factory=list)

    def by_id(self) -> dict[str, Sent]:
        return {m.control_id: m for m in self.messages}

    def names(self) -> set[str]:
        return {n for m in self.messages for n in (m.family, m.given)}

    def numbers(self) -> set[str]:
        return {m.fnr for m in self.messages}


def _fnr(n: int) -> str:
    for k in range(60):
        i = n * 60 + k
        v = ids.synthetic_fnr(1 + i % 28, 1 + (i // 28) % 12, 1930 + (i // 336) % 70, (i // 23520) % 1000)
        if v is not None:
            return v
    raise ValueError(n)


def _name(rng: random.Random, n: int) -> tuple[str, str]:
    return f"{rng.choice(_FAMILY)}{_letters(n)}", f"{rng.choice(_GIVEN)}{_letters(n * 7 + 3)}"


def _letters(n: int) -> str:
    out = ""
    for _ in range(3):
        out += "abcdefghijklmnopqrstuvwxyz"[n % 26]
        n //= 26
    return out


def _msh(cid: str, mtype: str) -> str:
    return f"MSH|^~\\&|CHAOSLAB|CHAOS_HF|ENJOURNAL|KOMMUNE|20260316091500||{mtype}|{cid}|P|2.5|||AL|NE|NOR\r"


def _pid(fnr: str | None, family: str, given: str, n: int) -> str:
    ident = f"{fnr}^^^^FNR~L{n}^^^CHAOS_HF^PI" if fnr else ""
    return f"PID|1||{ident}||{family}^{given}||19700101|F\r"


def adt(cid: str, fnr: str | None, family: str, given: str, n: int) -> bytes:
    return (
        _msh(cid, "ADT^A01^ADT_A01")
        + "EVN|A01|20260316091500\r"
        + _pid(fnr, family, given, n)
        + f"PV1|1|I|MED^101^1^CHAOS_HF||||||||||||||||V{cid}|||||||||||||||||||||||||20260316080000\r"
    ).encode("ascii")


def oru(cid: str, fnr: str, family: str, given: str, n: int, with_pid: bool = True) -> bytes:
    body = _msh(cid, "ORU^R01^ORU_R01") + (_pid(fnr, family, given, n) if with_pid else "")
    body += f"OBR|1|P{cid}|F{cid}^CHAOSLAB|NPU-PANEL^Panel^L|||20260316070000||||||||||||||||||F\r"
    body += f"OBX|1|NM|NPU02319^Hemoglobin;B^NLK||{10 + n % 7}.{n % 10}|g/dL|11.7-15.3||||F\r"
    body += f"OBX|2|NM|NPU19748^CRP;P^NLK||{n % 50}|mg/L|<5||||F\r"
    return body.encode("ascii")


def make_set(run: str, count: int, malformed_every: int = 25, seed: int = 7) -> MessageSet:
    """``count`` messages, every ``malformed_every``-th one malformed (0: none)."""
    rng = random.Random(seed)
    out = MessageSet(run)
    for n in range(count):
        cid = f"CHAOS{run}-{n:06d}"
        fnr, (family, given) = _fnr(n), _name(rng, n)
        code = MALFORMED[(n // malformed_every) % 3] if malformed_every and n % malformed_every == 7 else None
        out.messages.append(Sent(cid, _build(cid, fnr, family, given, n, code), fnr, family, given, code))
    return out


def _build(cid: str, fnr: str, family: str, given: str, n: int, code: str | None) -> bytes:
    if code == "HL7_NO_PID":
        return oru(cid, fnr, family, given, n, with_pid=False)
    if code == "HL7_UNSUPPORTED_TYPE":
        return adt(cid, fnr, family, given, n).replace(b"ADT^A01^ADT_A01", b"ZZZ^Z01")
    if code == "HL7_NO_PATIENT_ID":
        return adt(cid, None, family, given, n)
    return adt(cid, fnr, family, given, n) if n % 2 else oru(cid, fnr, family, given, n)


def control_id(raw: bytes) -> str | None:
    """MSH-10 of a raw message (None when there is no readable MSH)."""
    head = raw.lstrip(b"\r\n ")
    if not head.startswith(b"MSH") or len(head) < 4:
        return None
    line = head.replace(b"\n", b"\r").split(b"\r", 1)[0].decode("latin-1")
    parts = line.split(line[3])
    return parts[9] if len(parts) > 9 else None


def expected_versions(sent: Sent) -> set[tuple[str, str]]:
    """``(record_key, version_hash)`` the engine must write for ``sent`` (empty when malformed)."""
    if sent.malformed:
        return set()
    ctx = MapContext(envelope_id="expected", adapter="chaos", received_at=datetime.now(UTC))
    try:
        result = map_message(sent.raw, ctx)
    except PermanentError as exc:
        raise AssertionError(f"{sent.control_id} should map but raised {exc.code}") from None
    return {(r.key, r.version_hash()) for r in result.records}


def file_body(messages: list[Sent]) -> bytes:
    """Several messages in one HL7 file, segments ending in CR, messages separated by a newline."""
    return b"\n".join(m.raw for m in messages) + b"\n"
