"""Verifying bearer tokens: ``Authorization`` header in, :class:`~engine.auth.principal.Principal` out.

``auth.mode: local`` verifies with the state directory's ES256 key, ``oidc`` with the identity provider's
JWKS (fetched by PyJWT's ``PyJWKClient`` and cached for ``jwks_cache_seconds``; an unknown ``kid`` fetches
it again). Signature, algorithm (asymmetric only), ``iss``, ``aud``, ``exp`` and ``nbf`` are checked, with
``auth.leeway_seconds`` of clock skew. Then the claims become a principal:

* role: the ``auth.claims.role`` claim when present; else an HPR claim means a clinician and a national-id
  claim a citizen; ops and auditor tokens must name their role;
* a clinician needs an HPR number (digits) and a purpose of use, a citizen a valid national id: a token
  without them is authentic but does not let its bearer read, so it is refused with 403 (not 401).

``auth.mode: none`` makes every caller the ``local`` principal; :func:`check_bind` refuses it on any
address but the loopback one.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import jwt

from engine import ids
from engine.auth import keys
from engine.auth.errors import AuthError
from engine.auth.principal import Principal, Role
from engine.config import AuthConfig
from engine.errors import ConfigError

_TOKEN_ROLES: dict[str, Role] = {"clinician": "clinician", "citizen": "citizen", "ops": "ops", "auditor": "auditor"}
_REQUIRED = ["exp", "iss", "aud", "sub"]
#: PyJWT's errors, most specific first (several derive from each other)
_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "TOKEN_EXPIRED"),
    (jwt.ImmatureSignatureError, "TOKEN_NOT_YET_VALID"),
    (jwt.InvalidAudienceError, "TOKEN_WRONG_AUDIENCE"),
    (jwt.InvalidIssuerError, "TOKEN_WRONG_ISSUER"),
    (jwt.MissingRequiredClaimError, "TOKEN_CLAIM_MISSING"),
    (jwt.InvalidAlgorithmError, "TOKEN_BAD_ALGORITHM"),
    (jwt.InvalidSignatureError, "TOKEN_BAD_SIGNATURE"),
    (jwt.InvalidIssuedAtError, "TOKEN_NOT_YET_VALID"),
    (jwt.DecodeError, "TOKEN_MALFORMED"),
    (jwt.InvalidKeyError, "TOKEN_BAD_ALGORITHM"),
)
#: the principal of ``auth.mode: none``
ANONYMOUS_LOCAL = "local:anonymous"


def check_bind(settings: AuthConfig, host: str) -> None:
    """Raise ConfigError when ``auth.mode: none`` would serve on an address other hosts can reach."""
    if settings.mode != "none" or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError("auth.mode none is allowed only when the API binds to 127.0.0.1")


class Authenticator:
    """One per process: holds the verification key (local) or the JWKS client (oidc)."""

    def __init__(self, settings: AuthConfig, state_dir: Path) -> None:
        self.settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        if settings.mode == "local":
            self._key = keys.load_or_create(keys.key_dir(settings, state_dir)).public_key()
            self._issuer, self._audience = settings.local.issuer, settings.local.audience
            self._algorithms = [keys.ALGORITHM]
        elif settings.mode == "oidc":
            oidc = settings.oidc
            assert oidc is not None  # AuthConfig's validator
            self._issuer, self._audience = oidc.issuer, oidc.audience
            self._algorithms = list(oidc.algorithms)
            self._jwks = jwt.PyJWKClient(
                oidc.jwks_url, cache_keys=True, cache_jwk_set=True, lifespan=max(oidc.jwks_cache_seconds, 1), timeout=5
            )

    def jwks(self) -> dict[str, Any] | None:
        """The local public key as a JWK Set (to publish for other verifiers); None unless mode is local."""
        return {"keys": [keys.public_jwk(self._key)]} if self.settings.mode == "local" else None

    def authenticate(
        self, authorization_header: str | None, client: str | None, *, break_glass: str | None = None
    ) -> Principal:
        """The principal the header's bearer token stands for; ``break_glass`` is the reason an ops caller
        states for reading content (the policy decides what it allows). Raises :class:`AuthError`."""
        if self.settings.mode == "none":
            return Principal(actor=ANONYMOUS_LOCAL, role="local", scopes=frozenset({"system/*.rs"}), client=client)
        token = _bearer(authorization_header)
        claims = self._decode(token)
        return self._principal(claims, client, (break_glass or "").strip() or None)

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            key = self._signing_key(token)
            decoded: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": _REQUIRED, "verify_signature": True},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(_code(exc)) from None
        return decoded

    def _signing_key(self, token: str) -> Any:
        if self._jwks is None:
            return self._key
        try:
            return self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            raise AuthError("AUTH_UNAVAILABLE") from None
        except jwt.PyJWKClientError:
            raise AuthError("TOKEN_UNKNOWN_KEY") from None

    def _principal(self, claims: dict[str, Any], client: str | None, break_glass: str | None) -> Principal:
        names = self.settings.claims
        hpr = _text(claims.get(names.hpr))
        pid = _text(claims.get(names.pid))
        purpose = _purpose(claims.get(names.purpose))
        role = _role(claims.get(names.role), hpr, pid)
        scopes = _scopes(claims.get(names.scope))
        sub = _text(claims.get("sub"))
        if role == "clinician":
            if not hpr or not hpr.isdigit():
                raise AuthError("TOKEN_NO_HPR")
            if not purpose:
                raise AuthError("TOKEN_NO_PURPOSE")
            actor = f"hpr:{hpr}"
        elif role == "citizen":
            if not pid or ids.classify(pid) is None:
                raise AuthError("TOKEN_NO_PID")
            actor = f"pid:{pid}"
        else:
            actor = f"{role}:{sub}"[:200]
        return Principal(
            actor=actor,
            role=role,
            scopes=scopes,
            purpose=purpose,
            citizen=pid if role == "citizen" else None,
            hpr=hpr if role == "clinician" else None,
            break_glass=break_glass if role == "ops" else None,
            client=client,
        )


def _bearer(header: str | None) -> str:
    if not header or not header.strip():
        raise AuthError("TOKEN_MISSING")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("TOKEN_MALFORMED")
    return token.strip()


def _code(exc: jwt.PyJWTError) -> str:
    for kind, code in _ERRORS:
        if isinstance(exc, kind):
            return code
    return "TOKEN_MALFORMED"


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise AuthError("TOKEN_BAD_CLAIM")
    return str(value).strip() or None


def _purpose(value: object) -> str | None:
    """A purpose of use as a code: a string, or an object with a ``code`` (HelseID's structured claims)."""
    if isinstance(value, dict):
        value = value.get("code")
    return _text(value)


def _role(value: object, hpr: str | None, pid: str | None) -> Role:
    named = _text(value)
    if named is not None:
        if named not in _TOKEN_ROLES:
            raise AuthError("TOKEN_ROLE_UNKNOWN")
        return _TOKEN_ROLES[named]
    if hpr:
        return "clinician"
    if pid:
        return "citizen"
    raise AuthError("TOKEN_NO_ROLE")


def _scopes(value: object) -> frozenset[str]:
    """SMART scopes from a space-separated string or a list of strings."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    raise AuthError("TOKEN_BAD_CLAIM")
