"""Local tokens and their verification: the round trip, and each way a token is refused with its code."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from engine.auth import keys
from engine.auth.errors import AuthError, TokenRequestError
from engine.auth.tokens import issue
from engine.auth.verify import Authenticator, check_bind
from engine.config import AuthConfig, parse_config
from engine.errors import ConfigError
from tests.helpers import fnr

LOCAL = AuthConfig(mode="local")


def _auth(tmp_path: Path, settings: AuthConfig = LOCAL) -> Authenticator:
    return Authenticator(settings, tmp_path)


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def _code(auth: Authenticator, header: str | None) -> tuple[str, int]:
    with pytest.raises(AuthError) as caught:
        auth.authenticate(header, "127.0.0.1")
    return caught.value.code, caught.value.status


def _signed(tmp_path: Path, claims: dict[str, Any], key: Any = None, headers: dict[str, Any] | None = None) -> str:
    """A token with exactly ``claims`` (over sensible defaults), signed by the local key or ``key``."""
    now = datetime.now(UTC)
    base = {
        "iss": "enjournal-local",
        "aud": "enjournal",
        "sub": "s1",
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "enjournal_role": "clinician",
        "helseid://claims/hpr/hpr_number": "9144900",
        "purpose_of_use": "TREAT",
        "scope": "user/*.rs",
    }
    signer = key or keys.load_or_create(tmp_path / "auth")
    return jwt.encode(
        {k: v for k, v in (base | claims).items() if v is not None}, signer, algorithm="ES256", headers=headers
    )


def test_the_local_key_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    first = keys.load_or_create(tmp_path / "auth")
    path = tmp_path / "auth" / keys.PRIVATE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = keys.load_or_create(tmp_path / "auth")
    assert first.private_numbers() == again.private_numbers()
    assert not [p for p in (tmp_path / "auth").iterdir() if p.name.endswith(".tmp")]


def test_the_state_directory_follows_the_embedded_store() -> None:
    assert keys.state_dir(parse_config({})) == Path("var")
    assert keys.state_dir(parse_config({"store": {"url": "sqlite:///data/x/journal.db"}})) == Path("data/x")
    assert keys.state_dir(parse_config({"store": {"url": "postgresql+psycopg://u@h/db"}})) == Path("var")


@pytest.mark.parametrize(
    ("role", "kwargs", "actor", "scopes"),
    [
        ("clinician", {"hpr": "9144900", "purpose": "TREAT"}, "hpr:9144900", {"user/*.rs"}),
        ("citizen", {"pid": fnr(1)}, f"pid:{fnr(1)}", {"patient/*.rs"}),
        ("ops", {"sub": "alice"}, "ops:alice", {"system/*.rs"}),
        ("auditor", {"sub": "bob"}, "auditor:bob", {"user/AuditEvent.rs"}),
    ],
)
def test_a_local_token_round_trips_to_its_principal(
    tmp_path: Path, role: str, kwargs: dict[str, str], actor: str, scopes: set[str]
) -> None:
    token = issue(LOCAL, role, state_dir=tmp_path, **kwargs)
    p = _auth(tmp_path).authenticate(_bearer(token), "10.0.0.7")
    assert (p.actor, p.role, p.scopes, p.client) == (actor, role, frozenset(scopes), "10.0.0.7")
    assert p.hpr == kwargs.get("hpr") and p.purpose == kwargs.get("purpose") and p.citizen == kwargs.get("pid")
    assert fnr(1) not in repr(p)


def test_break_glass_is_carried_for_ops_only(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    ops = auth.authenticate(_bearer(issue(LOCAL, "ops", state_dir=tmp_path)), None, break_glass=" outage 42 ")
    clin = issue(LOCAL, "clinician", state_dir=tmp_path, hpr="1", purpose="TREAT")
    assert ops.break_glass == "outage 42"
    assert auth.authenticate(_bearer(clin), None, break_glass="x").break_glass is None


@pytest.mark.parametrize(
    ("role", "kwargs"),
    [
        ("clinician", {"hpr": "9144900"}),
        ("clinician", {"purpose": "TREAT"}),
        ("clinician", {"hpr": "91x", "purpose": "TREAT"}),
        ("citizen", {}),
        ("citizen", {"pid": "12345678901"}),
        ("root", {}),
    ],
)
def test_a_token_that_cannot_be_made_is_refused(tmp_path: Path, role: str, kwargs: dict[str, str]) -> None:
    with pytest.raises(TokenRequestError):
        issue(LOCAL, role, state_dir=tmp_path, **kwargs)


def test_tokens_are_made_only_in_local_mode(tmp_path: Path) -> None:
    with pytest.raises(TokenRequestError):
        issue(AuthConfig(mode="none"), "ops", state_dir=tmp_path)


def test_a_bad_signature_is_401(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    assert _code(_auth(tmp_path), _bearer(_signed(tmp_path, {}, key=other))) == ("TOKEN_BAD_SIGNATURE", 401)


def test_a_tampered_payload_is_a_bad_signature(tmp_path: Path) -> None:
    head, body, sig = _signed(tmp_path, {}).split(".")
    forged = jwt.utils.base64url_encode(b'{"sub":"x"}').decode()
    assert _code(_auth(tmp_path), _bearer(f"{head}.{forged}.{sig}"))[0] == "TOKEN_BAD_SIGNATURE"


@pytest.mark.parametrize(
    ("claims", "code", "status"),
    [
        ({"exp": datetime.now(UTC) - timedelta(minutes=5)}, "TOKEN_EXPIRED", 401),
        ({"nbf": datetime.now(UTC) + timedelta(minutes=5)}, "TOKEN_NOT_YET_VALID", 401),
        ({"aud": "someone-else"}, "TOKEN_WRONG_AUDIENCE", 401),
        ({"iss": "https://evil.example"}, "TOKEN_WRONG_ISSUER", 401),
        ({"exp": None}, "TOKEN_CLAIM_MISSING", 401),
        ({"sub": None}, "TOKEN_CLAIM_MISSING", 401),
        ({"helseid://claims/hpr/hpr_number": None}, "TOKEN_NO_HPR", 403),
        ({"purpose_of_use": None}, "TOKEN_NO_PURPOSE", 403),
        ({"enjournal_role": "root"}, "TOKEN_ROLE_UNKNOWN", 403),
        ({"enjournal_role": "local"}, "TOKEN_ROLE_UNKNOWN", 403),
        ({"enjournal_role": None, "helseid://claims/hpr/hpr_number": None}, "TOKEN_NO_ROLE", 403),
        ({"enjournal_role": "citizen", "pid": "12345678901"}, "TOKEN_NO_PID", 403),
        ({"scope": {"not": "a list"}}, "TOKEN_BAD_CLAIM", 401),
    ],
)
def test_each_refusal_has_its_code(tmp_path: Path, claims: dict[str, Any], code: str, status: int) -> None:
    token = _signed(tmp_path, claims)
    assert _code(_auth(tmp_path), _bearer(token)) == (code, status)


def test_a_refusal_never_quotes_the_token_or_its_claims(tmp_path: Path) -> None:
    token = _signed(tmp_path, {"enjournal_role": "citizen", "pid": "12345678901", "aud": "x"})
    with pytest.raises(AuthError) as caught:
        _auth(tmp_path).authenticate(_bearer(token), None)
    assert token not in str(caught.value) and "12345678901" not in str(caught.value)
    assert caught.value.reason.startswith("TOKEN_WRONG_AUDIENCE")


def test_without_a_role_claim_hpr_means_clinician_and_pid_citizen(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    clin = auth.authenticate(_bearer(_signed(tmp_path, {"enjournal_role": None})), None)
    cit = _signed(tmp_path, {"enjournal_role": None, "helseid://claims/hpr/hpr_number": None, "pid": fnr(2)})
    assert clin.role == "clinician"
    assert auth.authenticate(_bearer(cit), None).citizen == fnr(2)


def test_a_structured_purpose_and_a_list_of_scopes_are_read(tmp_path: Path) -> None:
    token = _signed(tmp_path, {"purpose_of_use": {"code": "ETREAT"}, "scope": ["user/Observation.rs", "openid"]})
    p = _auth(tmp_path).authenticate(_bearer(token), None)
    assert p.purpose == "ETREAT" and p.scopes == frozenset({"user/Observation.rs", "openid"})


@pytest.mark.parametrize("header", [None, "", "   ", "Basic dXNlcjpwdw==", "Bearer", "Bearer not.a.jwt"])
def test_no_token_or_not_a_bearer_jwt_is_401(tmp_path: Path, header: str | None) -> None:
    code, status = _code(_auth(tmp_path), header)
    assert status == 401 and code in {"TOKEN_MISSING", "TOKEN_MALFORMED"}


def test_an_unsigned_or_hs256_token_is_refused(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    claims = {"iss": "enjournal-local", "aud": "enjournal", "sub": "s", "exp": datetime.now(UTC) + timedelta(hours=1)}
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert _code(auth, _bearer(unsigned))[0] == "TOKEN_BAD_ALGORITHM"
    hs = jwt.encode(claims, "a-shared-secret-of-enough-length-for-hs256", algorithm="HS256")
    assert _code(auth, _bearer(hs))[0] == "TOKEN_BAD_ALGORITHM"


def test_oidc_refuses_symmetric_and_none_algorithms() -> None:
    base = {"mode": "oidc", "oidc": {"issuer": "i", "audience": "a", "jwks_url": "https://idp.example/jwks"}}
    for algs in (["none"], ["HS256"], ["RS256", "HS512"]):
        with pytest.raises(ConfigError):
            parse_config({"auth": {**base, "oidc": {**base["oidc"], "algorithms": algs}}})  # type: ignore[dict-item]
    with pytest.raises(ConfigError):
        parse_config({"auth": {"mode": "oidc"}})
    assert parse_config({"auth": base}).auth.mode == "oidc"


def test_mode_none_gives_the_local_principal_and_binds_to_loopback_only(tmp_path: Path) -> None:
    none = AuthConfig(mode="none")
    p = Authenticator(none, tmp_path).authenticate(None, "127.0.0.1")
    assert p.role == "local" and p.client == "127.0.0.1"
    for host in ("127.0.0.1", "::1", "localhost"):
        check_bind(none, host)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        with pytest.raises(ConfigError):
            check_bind(none, host)
    check_bind(LOCAL, "0.0.0.0")


def test_the_local_jwks_verifies_a_local_token(tmp_path: Path) -> None:
    auth = _auth(tmp_path)
    jwks = auth.jwks()
    assert jwks is not None and [k["kty"] for k in jwks["keys"]] == ["EC"] and "d" not in jwks["keys"][0]
    token = issue(LOCAL, "ops", state_dir=tmp_path)
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    assert jwt.decode(token, key, algorithms=["ES256"], audience="enjournal")["enjournal_role"] == "ops"
    assert Authenticator(AuthConfig(mode="none"), tmp_path).jwks() is None


def test_processes_racing_to_make_the_key_all_get_the_same_one(tmp_path: Path) -> None:
    import threading

    found: list[int] = []
    start = threading.Barrier(8)

    def make() -> None:
        start.wait()
        found.append(keys.load_or_create(tmp_path / "auth").private_numbers().private_value)

    pool = [threading.Thread(target=make) for _ in range(8)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert len(found) == 8 and len(set(found)) == 1
