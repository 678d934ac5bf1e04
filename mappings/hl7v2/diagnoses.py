"""DG1 (diagnosis of an ADT message) -> Condition.

* Code DG1-3 (CE/CWE: primary, alternates, original text); a DG1 with only a description (DG1-4)
  and no code gives no Condition.
* Text DG1-4, onset DG1-5 (a date-only value as ``onset_date``), the diagnosing clinician DG1-16 as a
  party (``diagnosing``), the Encounter of the same message as ``encounter_key``.
* Role by DG1-15 priority: ``1`` main, another number secondary.
* Status by DG1-6 diagnosis type: A (admitting) and W (working) preliminary, F (final) and others final.
* Key ``hl7v2|<facility>|condition|<PV1-19 or the subject's hash>|<code>``: the same diagnosis of the
  same visit is one record, updated by later messages.
"""

from __future__ import annotations

from typing import Any

from engine.model import Condition, Identifier, RecordStatus
from mappings.hl7v2 import parties, tables
from mappings.hl7v2.common import Source, digest
from mappings.hl7v2.message import Segment
from mappings.hl7v2.timeutil import time_or_date

_PRELIMINARY_TYPES = frozenset({"A", "W"})


def conditions(
    dg1s: list[Segment], subject: Identifier, visit: str, encounter_key: str | None, src: Source
) -> list[Condition]:
    """One Condition per coded DG1 (see the module docstring)."""
    scope = visit or digest(subject)
    out: list[Condition] = []
    for dg1 in dg1s:
        coded = tables.coded_field(dg1, 3)
        if coded.code is None:
            continue
        onset, onset_date = time_or_date(dg1.get(5))
        priority = dg1.get(15)
        fields: dict[str, Any] = {
            "key": src.key("condition", scope, coded.code.code),
            "subject": subject,
            "event_time": onset or src.event_time,
            "status": RecordStatus.PRELIMINARY if dg1.get(6).upper() in _PRELIMINARY_TYPES else RecordStatus.FINAL,
            "provenance": src.prov,
            "flags": src.flags,
            "code": coded.code,
            "role": ("main" if priority == "1" else "secondary") if priority.isdigit() else None,
            "onset": onset,
            "encounter_key": encounter_key,
            "text": dg1.get(4) or coded.text,
        }
        if onset_date is not None:
            fields["onset_date"] = onset_date
        if coded.alt is not None:
            fields["alt_codes"] = coded.alt
        if len(dg1.fields) > 16:
            fields["parties"] = parties.unique(parties.of(dg1, 16, "xcn", "diagnosing", src.facility))
        out.append(Condition.model_validate(fields))
    return out
