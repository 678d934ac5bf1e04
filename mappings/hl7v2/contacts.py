"""NK1 (next of kin and other contacts) -> the Person's ``contacts``.

Name NK1-2 (XPN family^given^further given), relationship NK1-3 (text, else code), address NK1-4, phones
NK1-5 and NK1-6 (business), contact role NK1-7 (text, else code, e.g. ``EMERGENCY``).
"""

from __future__ import annotations

from engine.model import Contact
from mappings.hl7v2 import pid as pidmod
from mappings.hl7v2.message import Segment


def _text_or_code(seg: Segment, f: int) -> str | None:
    return seg.get(f, 2) or seg.get(f) or None


def contacts(nk1s: list[Segment]) -> tuple[Contact, ...] | None:
    """The contacts the NK1 segments name (None when none names anyone: a contact needs a name, a phone or
    an address)."""
    out: list[Contact] = []
    for nk1 in nk1s:
        name = " ".join(x for x in (nk1.get(2, 2), nk1.get(2, 3), nk1.get(2)) if x) or None
        telecom = pidmod.telecom_of(nk1.raw(5), nk1.d) + pidmod.telecom_of(nk1.raw(6), nk1.d)
        found = Contact(
            relationship=_text_or_code(nk1, 3),
            role=_text_or_code(nk1, 7),
            name=name,
            telecom=telecom or None,
            address=pidmod.address_text(nk1.raw(4), nk1.d),
        )
        if found.name or found.telecom or found.address:  # a relationship alone names no one to contact
            out.append(found)
    return tuple(dict.fromkeys(out)) or None
