"""What an OBX reports on: value type (OBX-2), code (OBX-3, with alternates and original text), unit
(OBX-6), reference range (OBX-7) and result status (OBX-11).

These repeat in every result of the same test, so they are read once per distinct raw text and kept
(:func:`obx_test`, cached); the result's own fields (value, times, ids) are read per OBX.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.model import Coding, RecordStatus
from mappings.hl7v2 import tables, values
from mappings.hl7v2.message import Delimiters, Segment


@dataclass(frozen=True, slots=True)
class ObxTest:
    """The facts an OBX shares with every other result of its test."""

    value_type: str  # OBX-2, upper-cased
    code: Coding | None  # OBX-3
    alt_codes: tuple[Coding, ...] | None  # OBX-3.4-6 (and .10-12) beside the primary code
    code_text: str | None  # OBX-3.9 original text when it differs from the display
    code_key: str  # OBX-3.1, else OBX-3.4: the code in the record key
    unit: str | None  # OBX-6.1, else OBX-6.2
    reference: dict[str, Any]  # reference_range (+ ref_low/ref_high) from OBX-7; shared, never changed
    status: RecordStatus | None  # OBX-11
    status_code: str  # OBX-11 as written, upper-cased (for :func:`mappings.hl7v2.status.result_status`)
    extra: dict[str, Any]  # alt_codes / code_text when the OBX-3 has them; shared, never changed


def obx_test(obx: Segment) -> ObxTest:
    """The test facts of ``obx`` (see the module docstring)."""
    f = obx.fields
    if len(f) > 11:  # the usual OBX: read the raw fields directly
        return _test(f[2], f[3], f[6], f[7], f[11], obx.d)
    return _test(obx.raw(2), obx.raw(3), obx.raw(6), obx.raw(7), obx.raw(11), obx.d)


@lru_cache(maxsize=4096)
def _test(obx2: str, obx3: str, obx6: str, obx7: str, obx11: str, d: Delimiters) -> ObxTest:
    # an OBX holding only these fields, read with the same readers as a whole OBX
    seg = Segment("OBX", ["OBX", "", obx2, obx3, "", "", obx6, obx7, "", "", "", obx11], d)
    coded = tables.coded(seg.reps(3)[0], d) if obx3 else None
    return ObxTest(
        value_type=seg.get(2).upper(),
        code=tables.coding_of(seg, 3),
        alt_codes=coded.alt if coded else None,
        code_text=coded.text if coded else None,
        code_key=seg.get(3) or seg.get(3, 4),
        unit=values.unit(seg),
        reference=values.reference_range(seg.get(7)),
        status=tables.result_status(seg.get(11)),
        status_code=seg.get(11).strip().upper(),
        extra={k: v for k, v in (("alt_codes", coded.alt), ("code_text", coded.text)) if v} if coded else {},
    )
