"""Audit records as FHIR AuditEvents: who read which citizen's journal, when, why, and the answer.

A citizen reads their own access log this way (``AuditEvent?patient=``), an auditor anyone's. The actor is
shown as the audit log holds it (``hpr:<number>`` for a clinician, ``os:<user>`` for the CLI); the query
string is not shown (it may name another identifier).
"""

from __future__ import annotations

from typing import Any

from engine.audit.log import AuditRecord

__all__ = ["audit_event"]

_TYPE = {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"}
_INTERACTION = "http://hl7.org/fhir/restful-interaction"


def audit_event(record: AuditRecord, patient_id: str) -> dict[str, Any]:
    """The AuditEvent of one audit record about the citizen ``patient_id``."""
    agent: dict[str, Any] = {
        "type": {"text": record.role},
        "who": {"identifier": {"system": "urn:enjournal:actor", "value": record.actor}, "display": record.actor},
        "requestor": True,
    }
    if record.purpose:
        agent["purposeOfUse"] = [{"text": record.purpose}]
    if record.client:
        agent["network"] = {"address": record.client, "type": "2"}
    entity: list[dict[str, Any]] = [{"what": {"reference": f"Patient/{patient_id}"}}]
    if record.resource_type:
        entity.extend({"what": {"reference": f"{record.resource_type}/{rid}"}} for rid in record.resource_ids[:100])
    res: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(record.id),
        "type": _TYPE,
        "subtype": [{"system": _INTERACTION, "code": "search-type" if "search" in (record.query or "?") else "read"}],
        "action": "R" if record.outcome == "allowed" else "E",
        "recorded": record.at.isoformat(),
        "outcome": "0" if record.outcome == "allowed" else "4",
        "outcomeDesc": record.reason_code,
        "agent": [agent],
        "source": {"observer": {"display": "enjournal"}},
        "entity": entity,
    }
    if record.break_glass:
        res["purposeOfEvent"] = [{"text": "break-the-glass"}]
    return res
