"""The citizen as a FHIR Patient: every identifier of the component, demographics from the Person records.

A citizen is a connected component of identifiers (:mod:`engine.identity`); each source that sent
demographics has its own Person record. The Patient takes every identifier of the component (national ones
``use: official`` with their ``urn:oid:`` systems; flagged ones, such as an invalid check digit, ``use:
secondary`` with the flags named in ``type.text``) and, per element, the value of the newest Person version
that has it (by source event time), so one source missing a field does not hide another's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.fhir.codes import system_uri
from engine.model import Contact, Identifier, Person

__all__ = ["patient"]

_Json = dict[str, Any]
_KIND_TYPE = {"FNR": "NNNOR", "DNR": "NNNOR", "FHN": "NNNOR", "HNR": "MR", "LOCAL": "MR", "OTHER": "MR"}
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _identifier(i: Identifier) -> _Json:
    out: _Json = {
        "type": {"coding": [{"system": _V2_0203, "code": _KIND_TYPE[i.kind]}], "text": i.kind},
        "system": system_uri(i.system),
        "value": i.value,
    }
    if i.flags:
        out["use"] = "secondary"
        out["type"]["text"] = f"{i.kind} ({', '.join(i.flags)})"
    if i.national and not i.flags:
        out["use"] = "official"
    return out


def _newest(persons: list[Person], field: str) -> Any:
    for p in persons:
        value = getattr(p, field)
        if value is not None:
            return value
    return None


def patient(citizen_id: str, identifiers: Iterable[Identifier], persons: Iterable[Person]) -> _Json:
    """The Patient resource of a citizen (``persons``: the current Person records of the component)."""
    newest = sorted(persons, key=lambda p: p.event_time, reverse=True)
    res: _Json = {"resourceType": "Patient", "id": citizen_id}
    ids = sorted(identifiers, key=lambda i: (not i.national, i.system, i.value))
    res["identifier"] = [_identifier(i) for i in ids]
    family, given, middle = (_newest(newest, f) for f in ("family_name", "given_name", "middle_name"))
    if family or given or middle:
        name: _Json = {"use": "official"}
        if family:
            name["family"] = family
        givens = [x for x in (given, middle) if x]
        if givens:
            name["given"] = givens
        res["name"] = [name]
    sex = _newest(newest, "sex")
    if sex:
        res["gender"] = sex
    born = _newest(newest, "birth_date")
    if born:
        res["birthDate"] = born.isoformat()
    died = _newest(newest, "deceased_at")
    if died:
        res["deceasedDateTime"] = died.isoformat()
    address = _newest(newest, "address")
    if address:
        res["address"] = [{"text": address}]
    telecom = _newest(newest, "telecom")
    if telecom:
        res["telecom"] = [_contact_point(t) for t in telecom]
    marital = _newest(newest, "marital_status")
    if marital:
        res["maritalStatus"] = {"text": marital}
    language = _newest(newest, "language")
    if language:
        res["communication"] = [{"language": {"text": language}}]
    contacts = _newest(newest, "contacts")
    if contacts:
        # a Patient.contact needs a name, telecom, address or organization (pat-1)
        res["contact"] = [_contact(c) for c in contacts if c.name or c.telecom or c.address] or None
        if res["contact"] is None:
            del res["contact"]
    return res


def _contact_point(value: str) -> _Json:
    """A ContactPoint: an e-mail address when it has an ``@``, else a phone number."""
    return {"system": "email" if "@" in value else "phone", "value": value}


def _contact(c: Contact) -> _Json:
    out: _Json = {}
    relationship = [x for x in (c.relationship, c.role) if x]
    if relationship:
        out["relationship"] = [{"text": x} for x in relationship]
    if c.name:
        out["name"] = {"text": c.name}
    if c.telecom:
        out["telecom"] = [_contact_point(t) for t in c.telecom]
    if c.address:
        out["address"] = {"text": c.address}
    return out
