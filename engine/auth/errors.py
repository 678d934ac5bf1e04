"""Errors of authentication: a stable reason code and the HTTP status the read side answers with.

Messages name the check that failed, never the token, its claims or who it is about.
"""

from __future__ import annotations

from engine.errors import EnjournalError

#: what each code means (the message of an :class:`AuthError` without one of its own)
REASONS: dict[str, str] = {
    "TOKEN_MISSING": "no bearer token",
    "TOKEN_MALFORMED": "not a well-formed bearer JWT",
    "TOKEN_BAD_ALGORITHM": "the token's signing algorithm is not allowed",
    "TOKEN_BAD_SIGNATURE": "the token's signature does not verify",
    "TOKEN_UNKNOWN_KEY": "the token is signed by a key the issuer does not publish",
    "TOKEN_EXPIRED": "the token has expired",
    "TOKEN_NOT_YET_VALID": "the token is not valid yet (nbf / iat in the future)",
    "TOKEN_WRONG_AUDIENCE": "the token is for another audience",
    "TOKEN_WRONG_ISSUER": "the token is from another issuer",
    "TOKEN_CLAIM_MISSING": "the token lacks a required claim",
    "TOKEN_BAD_CLAIM": "a claim of the token has the wrong shape",
    "TOKEN_NO_ROLE": "the token names no role, HPR number or national id",
    "TOKEN_ROLE_UNKNOWN": "the token's role is not one the journal knows",
    "TOKEN_NO_HPR": "a clinician token without an HPR number",
    "TOKEN_NO_PURPOSE": "a clinician token without a purpose of use",
    "TOKEN_NO_PID": "a citizen token without a valid national id",
    "AUTH_UNAVAILABLE": "the identity provider's keys cannot be fetched",
}
#: codes that mean "who you are is known, but the token does not let you read": 403, not 401
FORBIDDEN = frozenset({"TOKEN_NO_ROLE", "TOKEN_ROLE_UNKNOWN", "TOKEN_NO_HPR", "TOKEN_NO_PURPOSE", "TOKEN_NO_PID"})


class AuthError(EnjournalError):
    """A request whose caller cannot be established: ``code`` (one of :data:`REASONS`) and ``status``
    (401 for a missing or invalid token, 403 for a valid one that lacks what its role needs, 503 when the
    identity provider's keys cannot be fetched)."""

    code = "AUTH_ERROR"

    def __init__(self, code: str) -> None:
        super().__init__(REASONS.get(code, code), code=code)
        self.status = 503 if code == "AUTH_UNAVAILABLE" else 403 if code in FORBIDDEN else 401


class TokenRequestError(EnjournalError):
    """``enjournal token`` asked for a token it cannot make (wrong mode, a missing HPR number ...)."""

    code = "TOKEN_REQUEST_INVALID"
