"""Access control: may this principal do this action on this kind of resource of this citizen?

:func:`decide` is pure (no I/O, no clock) and answers with a :class:`Decision` whose ``reason_code`` goes to
the audit log either way. The rules, by role:

* ``clinician``: clinical resources of any citizen, with an HPR number and a stated purpose of use;
* ``citizen``: clinical resources and audit events of their own citizen only (their national id among the
  identifier keys ``system|value`` the read concerns);
* ``ops``: metadata (:data:`METADATA_TYPES`: counts, envelopes, dead letters, the change feed); clinical
  content only with break-the-glass and a non-empty reason (allowed, flagged for the audit log);
* ``auditor``: audit events only, of anyone;
* ``local``: everything (``auth.mode: none`` on 127.0.0.1, and the engine's own CLI user); still audited.

On top of the role, a SMART v2 scope must grant the action: ``<context>/<type>.<perms>`` with ``*`` for any
type, perms a subset of ``cruds`` (``r`` read, ``s`` search) or the v1 ``read`` / ``*``. The context must be
the role's (``user`` clinician, ``patient`` citizen, ``system`` ops, ``user`` or ``system`` auditor). A scope
with a granular constraint (``?category=...``) is not honoured (it never grants more than it says).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine import ids
from engine.auth.principal import Principal

Action = Literal["read", "search"]
AUDIT_TYPE = "AuditEvent"
#: what ops may read without breaking the glass: no clinical content, no citizen's data
METADATA_TYPES = frozenset({"Counts", "Envelope", "DeadLetter", "Change"})
#: identifier systems a citizen's national id (``pid``) is a key of
_NATIONAL = (ids.OID_FNR, ids.OID_DNR, ids.OID_FHN)
_CONTEXTS: dict[str, frozenset[str]] = {
    "clinician": frozenset({"user"}),
    "citizen": frozenset({"patient"}),
    "ops": frozenset({"system"}),
    "auditor": frozenset({"user", "system"}),
}
_PERM = {"read": "r", "search": "s"}
_V1_PERMS = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason_code: str
    break_glass: bool = False  # allowed only because ops broke the glass: the audit log flags it


def decide(
    principal: Principal,
    action: Action,
    *,
    resource_type: str,
    citizen_ids: frozenset[str] = frozenset(),
    break_glass_reason: str | None = None,
) -> Decision:
    """Whether ``principal`` may ``action`` resources of ``resource_type`` about the citizen whose
    identifier keys are ``citizen_ids`` (empty: no citizen, e.g. a search across citizens or metadata)."""
    role = principal.role
    if role == "local":
        return Decision(True, "ALLOWED_LOCAL")
    if action not in _PERM:
        return _deny("DENIED_ACTION")
    kind = "audit" if resource_type == AUDIT_TYPE else "meta" if resource_type in METADATA_TYPES else "clinical"
    glass = False
    if role == "clinician":
        if kind != "clinical":
            return _deny("DENIED_RESOURCE_TYPE")
        if not principal.hpr:
            return _deny("DENIED_NO_HPR")
        if not principal.purpose:
            return _deny("DENIED_NO_PURPOSE")
    elif role == "citizen":
        if kind == "meta":
            return _deny("DENIED_RESOURCE_TYPE")
        if not _own(principal.citizen, citizen_ids):
            return _deny("DENIED_NOT_OWN_CITIZEN")
    elif role == "ops":
        if kind == "audit":
            return _deny("DENIED_RESOURCE_TYPE")
        if kind == "clinical":
            reason = (break_glass_reason or principal.break_glass or "").strip()
            if not reason:
                return _deny("DENIED_CLINICAL_CONTENT")
            glass = True
    elif kind != "audit":  # auditor
        return _deny("DENIED_RESOURCE_TYPE")
    if not scope_allows(principal.scopes, _CONTEXTS[role], resource_type, action):
        return _deny("DENIED_SCOPE")
    return Decision(True, "ALLOWED_BREAK_GLASS", True) if glass else Decision(True, "ALLOWED")


def _deny(code: str) -> Decision:
    return Decision(False, code)


def _own(pid: str | None, citizen_ids: frozenset[str]) -> bool:
    return bool(pid) and any(f"{system}|{pid}" in citizen_ids for system in _NATIONAL)


def scope_allows(scopes: frozenset[str], contexts: frozenset[str], resource_type: str, action: Action) -> bool:
    """Whether one of ``scopes`` (in one of ``contexts``) grants ``action`` on ``resource_type``."""
    perm = _PERM[action]
    for scope in scopes:
        parsed = _parse(scope)
        if parsed is None:
            continue
        context, rtype, perms = parsed
        if context in contexts and rtype in ("*", resource_type) and perm in perms:
            return True
    return False


def _parse(scope: str) -> tuple[str, str, str] | None:
    """``(context, type, perms)`` of a SMART resource scope; None for anything else (``openid``, a
    constrained scope, malformed text)."""
    if "?" in scope:
        return None
    context, slash, rest = scope.partition("/")
    rtype, dot, perms = rest.rpartition(".")
    if not slash or not dot or not rtype or not perms:
        return None
    if perms in _V1_PERMS:
        return context, rtype, _V1_PERMS[perms]
    if any(p not in "cruds" for p in perms) or list(perms) != sorted(perms, key="cruds".index):
        return None
    return context, rtype, perms
