"""Who may read what, and the trace every read leaves: the one seam between the FHIR routes and auth/audit.

Every route calls :meth:`Guard.principal` first (401 when the caller is not authenticated), then
:meth:`Guard.allow` once it knows which citizen and resource type a request touches (403 when the policy
refuses), and :meth:`Guard.audit` before the response leaves, for allowed and refused reads alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from engine.auth.principal import Principal

__all__ = ["Access", "Guard", "OpenGuard"]


@dataclass(frozen=True)
class Access:
    """One read as the audit log records it (the citizen by its identity component key)."""

    principal: Principal
    action: str  # read, search, history, everything
    resource_type: str
    citizen: str | None = None
    resource_ids: tuple[str, ...] = ()
    query: str = ""
    outcome: str = "allowed"  # allowed, or denied:<reason code>
    identifier_keys: frozenset[str] = field(default_factory=frozenset)


class Guard(Protocol):
    """Authentication, access control and audit of the read side."""

    def principal(self, authorization: str | None, client: str | None) -> Principal:
        """The verified caller; raises a 401 :class:`engine.api.errors.FhirError`."""

    def allow(self, access: Access) -> None:
        """Raises a 403 :class:`engine.api.errors.FhirError` when the policy refuses ``access``."""

    def audit(self, access: Access) -> None:
        """Append ``access`` to the audit log (before the response leaves)."""


class OpenGuard:
    """``auth.mode: none`` (only on 127.0.0.1): every caller is the local operator; reads are still audited
    through ``sink`` when one is given."""

    def __init__(self, sink: Guard | None = None) -> None:
        self._sink = sink

    def principal(self, authorization: str | None, client: str | None) -> Principal:
        return Principal(actor="local", role="local", scopes=frozenset({"system/*.rs"}), client=client)

    def allow(self, access: Access) -> None:
        return None

    def audit(self, access: Access) -> None:
        if self._sink is not None:
            self._sink.audit(access)
