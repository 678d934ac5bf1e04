"""Triage of one received HL7 v2 message (the MLLP listener and the HL7 file adapter share it).

Reads only the MSH (``mappings.hl7v2.parser.parse_header``) and decides what the sender is told:

* MSH missing or unreadable -> ``AR`` with the parser's code (``HL7_NO_MSH`` / ``HL7_BAD_MSH``);
* MSH-9.1 not in ``accepted_types`` -> ``AR`` with ``HL7_UNSUPPORTED_TYPE``;
* ``strict: true`` and ``mappings.hl7v2.strict.validate_strict`` finds problems -> ``AE`` with the
  first problem's code (``HL7_STRICT_INVALID`` when it has none);
* otherwise ``AA``.

Every message becomes an envelope, rejected ones too: they carry a ``rejection`` (code and text,
:class:`engine.rejection.Rejection`) so the worker archives and dead-letters them with the reason. Only accepted
envelopes carry the sender's ``dedup_key`` (``HL7|MSH-3|MSH-4|MSH-10``, escaped so that any header gives a
storable key: :meth:`mappings.hl7v2.parser.MshHeader.dedup_key`);
charset is the Python codec of MSH-18, else ``default_charset``; an accepted message whose bytes do
not fit it carries ``charset_repaired`` (``<declared>-><used>``, :func:`mappings.charset.repair_flag`).
Nothing here logs or quotes message content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.hl7_intake.ack import AckError, codec, salvage_header
from adapters.hl7_intake.options import Hl7Options, StrictCheck
from engine.envelope import Envelope
from engine.errors import ParseError
from mappings.charset import repair_flag
from mappings.hl7v2.parser import MshHeader, parse_header

CONTENT_TYPE = "application/hl7-v2"
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")


@dataclass(frozen=True, slots=True)
class Triage:
    envelope: Envelope
    head: MshHeader
    code: str  # AA / AE / AR
    error: AckError | None = None

    @property
    def accepted(self) -> bool:
        return self.code == "AA"


def _strict_error(problems: list[str]) -> AckError:
    first = problems[0]
    code, _, text = first.partition(":")
    if _CODE.match(code.strip()):
        return AckError(code.strip(), text.strip() or f"{len(problems)} problem(s)")
    return AckError("HL7_STRICT_INVALID", f"{len(problems)} problem(s)")


def judge(raw: bytes, options: Hl7Options, strict: StrictCheck | None = None) -> tuple[MshHeader, str, AckError | None]:
    """(header, AA/AE/AR, error) for one message; never raises on bad input."""
    try:
        head = parse_header(raw, options.default_charset)
    except ParseError as exc:
        return salvage_header(raw), "AR", AckError(exc.code, str(exc) if str(exc) != exc.code else "")
    except Exception as exc:  # noqa: BLE001 - a parser bug must not kill the connection; keep and reject
        return salvage_header(raw), "AR", AckError("HL7_ADAPTER_ERROR", f"header check failed ({type(exc).__name__})")
    if head.message_type not in options.accepted_types:
        return head, "AR", AckError("HL7_UNSUPPORTED_TYPE", f"message type {head.message_type} is not accepted")
    if strict is not None:
        try:
            problems = strict(raw)
        except Exception as exc:  # noqa: BLE001 - the validator's bug is the message's rejection, not a crash
            problems = [f"HL7_STRICT_INVALID: validator failed ({type(exc).__name__})"]
        if problems:
            return head, "AE", _strict_error(problems)
    return head, "AA", None


def triage(
    raw: bytes,
    *,
    adapter: str,
    options: Hl7Options,
    source_system: str | None,
    attributes: dict[str, str] | None = None,
    strict: StrictCheck | None = None,
) -> Triage:
    """Judge ``raw`` and wrap it in its envelope (see the module docstring)."""
    head, code, error = judge(raw, options, strict)
    attrs = dict(attributes or {})
    charset = codec(head.charset, options.default_charset)
    rejection = None
    if error is not None:
        rejection = error.rejection()
    elif (repaired := repair_flag(raw, charset)) is not None:
        attrs["charset_repaired"] = repaired
    env = Envelope.build(
        raw,
        adapter=adapter,
        mapping=options.mapping,
        content_type=CONTENT_TYPE,
        charset=charset,
        source_system=source_system,
        dedup_key=head.dedup_key() if error is None else None,
        attributes=attrs,
        rejection=rejection,
    )
    return Triage(env, head, code, error)


__all__ = ["CONTENT_TYPE", "Triage", "judge", "triage"]
