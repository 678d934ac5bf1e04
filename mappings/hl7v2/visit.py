"""What an ADT message says beside the Person and the Encounter: the visit's doctors (PV1, ROL) and the
observations an ADT carries (OBX: height, weight, heart rate at admission).

* Encounter parties: PV1-7 attending, PV1-8 referring, PV1-9 consulting, PV1-17 admitting doctor (XCN),
  and each ROL's person (ROL-4) with its role code (ROL-3.1, e.g. ``PP``) as the role.
* Observations: one per OBX, key ``hl7v2|<facility>|observation|adt|<PV1-19 or the subject's hash>|<code>``
  (the same vital sign of the same visit is one record, updated by later A08s). Value, unit, range and
  flags as in ORU; effective time OBX-14, else the event time; status by OBX-11 alone.
"""

from __future__ import annotations

from typing import Any

from engine.model import Coding, Identifier, Observation, Party
from mappings.hl7v2 import parties, values
from mappings.hl7v2 import status as tables_status
from mappings.hl7v2.common import Source, digest
from mappings.hl7v2.message import Segment
from mappings.hl7v2.obxtest import obx_test
from mappings.hl7v2.timeutil import time_or_date

_PV1_ROLES = ((7, "attending"), (8, "referring"), (9, "consulting"), (17, "admitting"))
_UNKNOWN = Coding(code="UNKNOWN")


def encounter_parties(pv1: Segment, rols: list[Segment], facility: str) -> tuple[Party, ...] | None:
    """The doctors PV1 and the ROL segments name for the visit (None when none)."""
    found: list[Party] = []
    fields = pv1.fields
    for f, role in _PV1_ROLES:
        if len(fields) > f and fields[f]:  # most PV1s name no doctor: skip the reader
            found.extend(parties.of(pv1, f, "xcn", role, facility))
    if not found and not rols:
        return None
    for rol in rols:
        found.extend(parties.of(rol, 4, "xcn", rol.get(3) or "role", facility))
    return parties.unique(found)


def _abnormal(obx: Segment) -> str | None:
    """OBX-8's flags, comma-separated (as in ORU)."""
    if not obx.raw(8):
        return None
    return ",".join(x for x in (obx.get(8, rep=r) for r in range(len(obx.reps(8)))) if x) or None


def observations(obxs: list[Segment], subject: Identifier, visit: str, src: Source) -> list[Observation]:
    """One Observation per OBX of an ADT message (see the module docstring)."""
    scope = visit or digest(subject)
    out: list[Observation] = []
    for obx in obxs:
        test = obx_test(obx)
        value = values.obx_value(obx, test.value_type)
        value.pop("attachment", None)  # an ED value in an ADT is not expected; its bytes are not kept here
        flags: tuple[str, ...] = src.flags
        if "flags" in value:
            flags = (*flags, *value.pop("flags"))
        status, sflags = tables_status.result_status("", test.status_code, bool(value))
        effective, effective_date = time_or_date(obx.get(14), "")
        fields: dict[str, Any] = {
            "key": src.key("observation", "adt", scope, test.code_key or obx.get(1) or "0"),
            "subject": subject,
            "event_time": effective or src.event_time,
            "status": status,
            "provenance": src.prov,
            "flags": (*flags, *sflags),
            "code": test.code or _UNKNOWN,
            "value_type": test.value_type or None,
            "unit": test.unit,
            "abnormal_flag": _abnormal(obx),
            "effective_time": effective,
            **test.extra,
            **test.reference,
            **value,
        }
        if effective_date is not None:
            fields["effective_date"] = effective_date
        if obx.get(4):
            fields["report_id"] = obx.get(4)
        if len(obx.fields) > 16:
            fields["parties"] = parties.unique(parties.of(obx, 16, "xcn", "performer", src.facility))
        out.append(Observation.model_validate(fields))
    return out
