"""The read side's guard (:class:`engine.api.guard.Guard`) over the authenticator, the policy and the audit log.

``principal`` verifies the bearer token (a refusal is audited as an ``anonymous`` denial, then answered
401/403/503); ``allow`` asks :func:`engine.auth.policy.decide` (403 with the policy's reason code);
``audit`` appends the read to the audit log and answers 503 when it cannot: a read that leaves no trace is
not served.
"""

from __future__ import annotations

from engine.api.errors import FhirError
from engine.api.guard import Access
from engine.audit import AuditEntry, AuditLog
from engine.auth.errors import AuthError
from engine.auth.policy import Action, Decision, decide
from engine.auth.principal import Principal
from engine.auth.verify import Authenticator
from engine.errors import StoreUnavailable

#: the API's actions as SMART permissions: a history or a version is a read, ``$everything`` a search
_ACTIONS: dict[str, Action] = {"read": "read", "vread": "read", "history": "read", "search": "search"}
_DENIALS = {
    "DENIED_SCOPE": "the token's scopes do not grant this read",
    "DENIED_NOT_OWN_CITIZEN": "a citizen may read only their own journal",
    "DENIED_CLINICAL_CONTENT": "clinical content needs break-the-glass with a stated reason",
    "DENIED_RESOURCE_TYPE": "this role may not read this resource type",
    "DENIED_NO_PURPOSE": "a clinician must state a purpose of use",
    "DENIED_NO_HPR": "a clinician needs an HPR number",
    "DENIED_ACTION": "this action is not allowed",
}


class AuthGuard:
    """Authentication, access control and audit for ``enjournal serve`` (one per worker process)."""

    def __init__(self, authenticator: Authenticator, audit_log: AuditLog) -> None:
        self.authenticator = authenticator
        self.audit_log = audit_log

    def principal(
        self, authorization: str | None, client: str | None, *, break_glass: str | None = None, query: str = ""
    ) -> Principal:
        try:
            return self.authenticator.authenticate(authorization, client, break_glass=break_glass)
        except AuthError as exc:
            self._append(AuditEntry.unauthenticated(exc.code, client=client, query=query or None))
            raise FhirError(exc.status, exc.code, str(exc)) from None

    def decision(self, access: Access) -> Decision:
        """What the policy says about ``access``."""
        return decide(
            access.principal,
            _ACTIONS.get(access.action, "search"),  # $everything and searches
            resource_type=access.resource_type,
            citizen_ids=access.identifier_keys,
            break_glass_reason=access.principal.break_glass,
        )

    def allow(self, access: Access) -> None:
        d = self.decision(access)
        if not d.allowed:
            raise FhirError(403, d.reason_code, _DENIALS.get(d.reason_code, "not allowed"))

    def audit(self, access: Access) -> None:
        p = access.principal
        if access.outcome.startswith("denied"):
            outcome, code, glass = "denied", access.outcome.partition(":")[2] or "DENIED", None
        else:
            d = self.decision(access)
            # a route that found nothing to check (an empty search) records that it asked no policy
            outcome, code, glass = "allowed", d.reason_code if d.allowed else "UNCHECKED", d.break_glass
        self._append(
            AuditEntry(
                actor=p.actor,
                role=p.role,
                outcome=outcome,
                reason_code=code,
                purpose=p.purpose,
                citizen_key=access.citizen,
                resource_type=access.resource_type,
                resource_ids=access.resource_ids,
                query=access.query or None,
                client=p.client,
                break_glass=p.break_glass if glass else None,
            )
        )

    def _append(self, entry: AuditEntry) -> None:
        try:
            self.audit_log.append(entry)
        except StoreUnavailable:
            raise FhirError(503, "AUDIT_UNAVAILABLE", "the read cannot be recorded in the audit log") from None
