"""Code systems and identifier namespaces as FHIR wants them: URIs.

The canonical model names a code system by an OID (Volven ``2.16.578.1.12.4.1.1.nnnn``), an HL7 v2 table or
coding-system name (``LN``, ``HL70070``) or a scoped local name (``urn:enjournal:local:<source>``). FHIR needs
a URI: an OID becomes ``urn:oid:<oid>`` unless FHIR names the system by a canonical URL (LOINC, SNOMED CT,
UCUM, ICD-10, the HL7 v2 tables), a ``urn:`` or ``http(s):`` name is kept, anything else becomes
``urn:enjournal:code:<name>`` (percent-encoded: a URI holds no spaces).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from engine.model import Coding

__all__ = ["codeable", "coding", "system_uri"]

_OID = re.compile(r"^[0-2](\.\d+)+$")
_V2_TABLE = re.compile(r"^HL7(\d{4})$", re.IGNORECASE)

#: systems FHIR names by a canonical URL, by OID and by HL7 v2 coding-system name (table 0396)
_CANONICAL = {
    "2.16.840.1.113883.6.1": "http://loinc.org",
    "LN": "http://loinc.org",
    "2.16.840.1.113883.6.96": "http://snomed.info/sct",
    "SCT": "http://snomed.info/sct",
    "SNM": "http://snomed.info/sct",
    "2.16.840.1.113883.6.8": "http://unitsofmeasure.org",
    "UCUM": "http://unitsofmeasure.org",
    "2.16.840.1.113883.6.3": "http://hl7.org/fhir/sid/icd-10",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "2.16.840.1.113883.6.73": "http://www.whocc.no/atc",
    "ATC": "http://www.whocc.no/atc",
    "urn:ietf:bcp:13": "urn:ietf:bcp:13",
}


@lru_cache(maxsize=4096)
def system_uri(system: str) -> str:
    """The FHIR system URI of a model code system or identifier namespace (see the module docstring)."""
    system = system.strip()
    known = _CANONICAL.get(system) or _CANONICAL.get(system.upper())
    if known is not None:
        return known
    if _OID.match(system):
        return "urn:oid:" + system
    table = _V2_TABLE.match(system)
    if table is not None:
        return f"http://terminology.hl7.org/CodeSystem/v2-{table.group(1)}"
    if system.startswith(("urn:", "http://", "https://")):
        return quote(system, safe=":/.-_~%#?=&")
    return "urn:enjournal:code:" + quote(system, safe="")


#: placeholder codes the mappings give an element that has a text but no code: FHIR gets the text only
PLACEHOLDER_CODES = frozenset({"UNSPECIFIED", "UNKNOWN"})


def _coded(c: Coding | None) -> bool:
    return c is not None and bool(c.code) and not (c.system is None and c.code in PLACEHOLDER_CODES)


def coding(c: Coding) -> dict[str, Any]:
    """A FHIR Coding of a model Coding (a code the source gave without a system has none)."""
    out: dict[str, Any] = {}
    if c.system:
        out["system"] = system_uri(c.system)
    out["code"] = c.code
    if c.display:
        out["display"] = c.display
    return out


def codeable(
    first: Coding | None, more: tuple[Coding, ...] | None = None, text: str | None = None
) -> dict[str, Any] | None:
    """A FHIR CodeableConcept of one or more codings and an original text; None when there is nothing."""
    codings = [coding(c) for c in (first, *(more or ())) if c is not None and _coded(c)]
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = codings
    if text:
        out["text"] = text
    elif first is not None and not codings and first.display:
        out["text"] = first.display
    return out or None
