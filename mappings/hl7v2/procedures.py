"""PR1 (procedures) -> Procedure records.

Code PR1-3 (CE/CWE, with alternates), text PR1-4 (description), performed PR1-5 (a date-only value as
``performed_date``), surgeon PR1-11 and procedure practitioner PR1-12 as parties (``surgeon``,
``performer``), anesthesiologist PR1-8 (``anesthesiologist``), the Encounter of the message as
``encounter_key``. Key ``hl7v2|<facility>|procedure|<PV1-19 or the subject's hash>|<code>|<PR1-5>``.
"""

from __future__ import annotations

from typing import Any

from engine.model import Identifier, Procedure
from mappings.hl7v2 import parties, tables
from mappings.hl7v2.common import Source, digest
from mappings.hl7v2.message import Segment
from mappings.hl7v2.timeutil import time_or_date

_ROLES = ((8, "anesthesiologist"), (11, "surgeon"), (12, "performer"))


def procedures(
    pr1s: list[Segment], subject: Identifier, visit: str, encounter_key: str | None, src: Source
) -> list[Procedure]:
    """One Procedure per coded PR1 (see the module docstring)."""
    scope = visit or digest(subject)
    out: list[Procedure] = []
    for pr1 in pr1s:
        coded = tables.coded_field(pr1, 3)
        if coded.code is None:
            continue
        performed, performed_date = time_or_date(pr1.get(5))
        fields: dict[str, Any] = {
            "key": src.key("procedure", scope, coded.code.code, pr1.get(5)),
            "subject": subject,
            "event_time": performed or src.event_time,
            "provenance": src.prov,
            "flags": src.flags,
            "code": coded.code,
            "alt_codes": coded.alt,
            "text": pr1.get(4) or coded.text,
            "performed": performed,
            "encounter_key": encounter_key,
        }
        if performed_date is not None:
            fields["performed_date"] = performed_date
        found = [p for f, role in _ROLES if len(pr1.fields) > f for p in parties.of(pr1, f, "xcn", role, src.facility)]
        if found:
            fields["parties"] = parties.unique(found)
        out.append(Procedure.model_validate(fields))
    return out
