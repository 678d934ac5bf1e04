"""AL1 (patient allergy information) -> Allergy records.

Allergen AL1-3 (CE/CWE), category by AL1-2 (HL7 table 0127: DA drug -> medication, FA food, EA/AA
environmental/animal -> environment, PA plant -> environment, MA/MC misc -> none), severity by AL1-4
(table 0128: SV severe, MO moderate, MI mild), reaction AL1-5, identified AL1-6. Key
``hl7v2|<facility>|allergy|<the subject's hash>|<allergen code>``: the same allergy of the same patient is
one record, updated by later messages.
"""

from __future__ import annotations

from typing import Any

from engine.model import Allergy, Identifier
from mappings.hl7v2 import tables
from mappings.hl7v2.common import Source, digest
from mappings.hl7v2.message import Segment
from mappings.hl7v2.timeutil import time_or_date

_CATEGORY = {"DA": "medication", "FA": "food", "EA": "environment", "AA": "environment", "PA": "environment"}
_SEVERITY = {"SV": "severe", "MO": "moderate", "MI": "mild"}


def allergies(al1s: list[Segment], subject: Identifier, src: Source) -> list[Allergy]:
    """One Allergy per AL1 that names an allergen (see the module docstring)."""
    out: list[Allergy] = []
    for al1 in al1s:
        allergen = tables.coded_field(al1, 3).code
        if allergen is None:
            continue
        identified, identified_date = time_or_date(al1.get(6))
        fields: dict[str, Any] = {
            "key": src.key("allergy", digest(subject), allergen.code),
            "subject": subject,
            "event_time": src.event_time,
            "provenance": src.prov,
            "flags": src.flags,
            "code": allergen,
            "category": _CATEGORY.get(al1.get(2).upper()),
            "severity": _SEVERITY.get(al1.get(4).upper()),
            "reaction": "; ".join(r for r in (al1.get(5, rep=i) for i in range(len(al1.reps(5)))) if r) or None,
            "identified": identified,
        }
        if identified_date is not None:
            fields["identified_date"] = identified_date
        out.append(Allergy.model_validate(fields))
    return out
