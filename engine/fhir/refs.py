"""FHIR resource types and ids for canonical records and parties.

A record's FHIR id is derived from its key (stable across versions and stores: the same record always has
the same id), because keys hold characters an id may not (``|``, ``@``, spaces) and may be longer than 64.
A party's id is derived from its first national id (HPR, HER, ENH ...), else from its name, so the same
practitioner named by two messages is one resource.
"""

from __future__ import annotations

import hashlib

from engine.model import Party

__all__ = ["RESOURCE_TYPES", "citizen_id", "party_id", "party_ref", "record_id", "record_ref"]

#: the FHIR resource type each record kind is served as
RESOURCE_TYPES = {
    "person": "Patient",
    "observation": "Observation",
    "report": "DiagnosticReport",
    "requisition": "ServiceRequest",
    "referral": "ServiceRequest",
    "specimen": "Specimen",
    "condition": "Condition",
    "document": "DocumentReference",
    "encounter": "Encounter",
    "medication": "MedicationStatement",
    "care_event": "Basic",
    "allergy": "AllergyIntolerance",
    "procedure": "Procedure",
}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def record_id(key: str) -> str:
    """The FHIR id of the record with this key (32 hex digits)."""
    return _digest(key)


def record_ref(kind: str, key: str) -> str:
    """``Type/id`` of the record of this kind and key."""
    return f"{RESOURCE_TYPES[kind]}/{record_id(key)}"


def party_id(party: Party) -> str:
    """The FHIR id of a practitioner or organisation (from its first id, else its name)."""
    if party.ids:
        first = party.ids[0]
        return _digest(f"{party.kind}|{first.system}|{first.value}")
    return _digest(f"{party.kind}|name|{party.name or ''}|{party.organization or ''}")


def party_ref(party: Party) -> dict[str, str]:
    """A FHIR Reference to the party, with its name as display."""
    rtype = "Practitioner" if party.kind == "practitioner" else "Organization"
    ref = {"reference": f"{rtype}/{party_id(party)}"}
    if party.name:
        ref["display"] = party.name
    return ref


def citizen_id(component: str) -> str:
    """The FHIR id of the citizen whose identity component is labelled ``component`` (its smallest key)."""
    return _digest("patient|" + component)
