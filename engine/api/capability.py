"""The CapabilityStatement ``/fhir/metadata`` serves: what this server reads and searches (public)."""

from __future__ import annotations

from typing import Any

from engine.api.search import DATE_PATHS

__all__ = ["capability_statement"]

_SEARCH = [
    {"name": "patient", "type": "reference"},
    {"name": "code", "type": "token"},
    {"name": "date", "type": "date"},
    {"name": "status", "type": "token"},
]
_READ = [{"code": "read"}, {"code": "vread"}, {"code": "history-instance"}]


def capability_statement(base: str) -> dict[str, Any]:
    """The server's CapabilityStatement (FHIR R4, JSON, read-only, SMART on FHIR security)."""
    clinical = [
        {"type": rtype, "interaction": [*_READ, {"code": "search-type"}], "searchParam": _SEARCH}
        for rtype in DATE_PATHS
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-08",
        "kind": "instance",
        "software": {"name": "enjournal"},
        "implementation": {"description": "enjournal: one journal per citizen", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "OAuth 2 bearer tokens (SMART v2 scopes); every read is audited",
                },
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [{"name": "identifier", "type": "token"}],
                        "operation": [
                            {
                                "name": "everything",
                                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                            }
                        ],
                    },
                    *clinical,
                    {"type": "Practitioner", "interaction": [{"code": "read"}]},
                    {"type": "Organization", "interaction": [{"code": "read"}]},
                ],
            }
        ],
    }
