"""Local tokens (``auth.mode: local``): ES256 JWTs signed with the state directory's key.

``enjournal token`` prints one; tests sign theirs the same way. The claims are the ones an ``oidc``
deployment reads (names from ``auth.claims``), so a local token exercises the same verification path.
"""

from __future__ import annotations

import getpass
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from engine import ids
from engine.auth import keys
from engine.auth.errors import TokenRequestError
from engine.config import AuthConfig

#: the SMART v2 scopes each role's token carries (ops is held to metadata by the policy, not the scope)
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "clinician": ("user/*.rs",),
    "citizen": ("patient/*.rs",),
    "ops": ("system/*.rs",),
    "auditor": ("user/AuditEvent.rs",),
}


def os_user() -> str:
    """The OS user running this process (``uid<n>`` when the system has no name for it)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no USER/LOGNAME and no passwd entry (a container's arbitrary uid)
        return f"uid{os.getuid()}"


def issue(
    settings: AuthConfig,
    role: str,
    *,
    state_dir: Path,
    hpr: str | None = None,
    purpose: str | None = None,
    pid: str | None = None,
    sub: str | None = None,
    ttl: int | None = None,
    now: datetime | None = None,
) -> str:
    """A signed local token for ``role``: a clinician needs ``hpr`` and ``purpose``, a citizen ``pid`` (a
    valid national id); ``sub`` defaults to the OS user for ops and auditor. Raises TokenRequestError."""
    if settings.mode != "local":
        raise TokenRequestError("tokens are made only with auth.mode local")
    if role not in ROLE_SCOPES:
        raise TokenRequestError(f"role must be one of {', '.join(ROLE_SCOPES)}")
    names = settings.claims
    claims: dict[str, Any] = {names.role: role, names.scope: " ".join(ROLE_SCOPES[role])}
    if role == "clinician":
        if not hpr or not hpr.isdigit() or not purpose:
            raise TokenRequestError("a clinician token needs --hpr (digits) and --purpose")
        claims |= {names.hpr: hpr, names.purpose: purpose}
        sub = sub or f"hpr-{hpr}"
    elif role == "citizen":
        if not pid or ids.classify(pid.strip()) is None:
            raise TokenRequestError("a citizen token needs --pid with a valid national id")
        claims[names.pid] = pid.strip()
        sub = sub or uuid.uuid4().hex
    else:
        sub = sub or os_user()
    if purpose and role != "clinician":
        claims[names.purpose] = purpose
    at = now or datetime.now(UTC)
    local = settings.local
    claims |= {
        "iss": local.issuer,
        "aud": local.audience,
        "sub": sub,
        "iat": at,
        "nbf": at,
        "exp": at + timedelta(seconds=ttl or local.ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    key = keys.load_or_create(keys.key_dir(settings, state_dir))
    kid = keys.public_jwk(key.public_key())["kid"]
    return jwt.encode(claims, key, algorithm=keys.ALGORITHM, headers={"kid": kid})
