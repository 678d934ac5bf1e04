"""Errors of the read side as FHIR OperationOutcomes: a typed error per HTTP status, never a traceback.

Diagnostics name the parameter or the resource type at fault, never a value a client sent (it may be a
national id) and never personal data from the store.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FhirError", "operation_outcome"]

#: the OperationOutcome issue code of each status (FHIR ``issue-type``)
_ISSUE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    410: "deleted",
    422: "processing",
    500: "exception",
    503: "transient",
}


class FhirError(Exception):
    """A request the API answers with ``status`` and an OperationOutcome; ``code`` is a stable reason code."""

    def __init__(self, status: int, code: str, diagnostics: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.headers = headers or {}


def operation_outcome(status: int, code: str, diagnostics: str) -> dict[str, Any]:
    """The OperationOutcome body for an error."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error" if status < 500 else "fatal",
                "code": _ISSUE.get(status, "processing"),
                "details": {"coding": [{"system": "urn:enjournal:reason", "code": code}]},
                "diagnostics": diagnostics,
            }
        ],
    }
