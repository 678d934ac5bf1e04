"""What both HL7 v2 adapters (``mllp`` and ``hl7-file``) do with one received message.

* :mod:`.options`: the settings they share (``mapping``, ``default_charset``, ``accepted_types``,
  ``strict``) and the strict profile check's loading;
* :mod:`.triage`: the MSH check that decides a message's answer (AA/AE/AR) and wraps it in its envelope;
* :mod:`.ack`: the ACK itself (original and enhanced mode), the error it carries and the header salvaged
  from a message whose MSH does not parse.

Neither adapter's own mechanics live here: MLLP framing and connections are in :mod:`adapters.mllp`,
reading files as a stream in :mod:`adapters.hl7_file`.
"""

from adapters.hl7_intake.ack import AckError, build_ack, codec, salvage_header
from adapters.hl7_intake.options import Hl7Options, StrictCheck, load_strict
from adapters.hl7_intake.triage import CONTENT_TYPE, Triage, judge, triage

__all__ = [
    "CONTENT_TYPE",
    "AckError",
    "Hl7Options",
    "StrictCheck",
    "Triage",
    "build_ack",
    "codec",
    "judge",
    "load_strict",
    "salvage_header",
    "triage",
]
