"""``auth.mode: oidc``: tokens signed by an identity provider's key, verified through its JWKS (served here by
a real HTTP server on 127.0.0.1), cached, with an unknown key and an unreachable provider refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.auth.errors import AuthError
from engine.auth.verify import Authenticator
from engine.config import AuthConfig
from tests.helpers import fnr

ISSUER = "https://helseid-sts.test.example"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class _Jwks(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:  # the name http.server calls
        type(self).hits += 1
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def jwks_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Jwks.hits = 0
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    server.shutdown()
    server.server_close()


def _settings(url: str) -> AuthConfig:
    return AuthConfig.model_validate(
        {"mode": "oidc", "oidc": {"issuer": ISSUER, "audience": "enjournal-api", "jwks_url": url}}
    )


def _token(claims: dict[str, Any], key: Any = KEY, kid: str = "k1") -> str:
    now = datetime.now(UTC)
    base = {"iss": ISSUER, "aud": "enjournal-api", "sub": "x", "iat": now, "exp": now + timedelta(minutes=5)}
    return jwt.encode(base | claims, key, algorithm="RS256", headers={"kid": kid})


def test_a_helseid_style_token_is_a_clinician_and_the_jwks_is_cached(jwks_url: str, tmp_path: Path) -> None:
    auth = Authenticator(_settings(jwks_url), tmp_path)
    claims = {"helseid://claims/hpr/hpr_number": 9144900, "purpose_of_use": "TREAT", "scope": "user/*.rs"}
    for _ in range(3):
        p = auth.authenticate(f"Bearer {_token(claims)}", "10.0.0.1")
        assert (p.role, p.actor, p.hpr) == ("clinician", "hpr:9144900", "9144900")
    assert _Jwks.hits == 1


def test_an_id_porten_style_token_is_a_citizen(jwks_url: str, tmp_path: Path) -> None:
    p = Authenticator(_settings(jwks_url), tmp_path).authenticate(
        f"Bearer {_token({'pid': fnr(5), 'scope': 'patient/*.rs openid'})}", None
    )
    assert (p.role, p.citizen) == ("citizen", fnr(5))


def test_an_unknown_key_or_a_foreign_signature_is_refused(jwks_url: str, tmp_path: Path) -> None:
    auth = Authenticator(_settings(jwks_url), tmp_path)
    claims = {"pid": fnr(5)}
    with pytest.raises(AuthError) as caught:
        auth.authenticate(f"Bearer {_token(claims, kid='k2')}", None)
    assert (caught.value.code, caught.value.status) == ("TOKEN_UNKNOWN_KEY", 401)
    with pytest.raises(AuthError) as caught:
        auth.authenticate(f"Bearer {_token(claims, key=OTHER)}", None)
    assert caught.value.code == "TOKEN_BAD_SIGNATURE"


def test_an_unreachable_identity_provider_is_503(tmp_path: Path) -> None:
    auth = Authenticator(_settings("http://127.0.0.1:9/jwks"), tmp_path)
    with pytest.raises(AuthError) as caught:
        auth.authenticate(f"Bearer {_token({'pid': fnr(5)})}", None)
    assert (caught.value.code, caught.value.status) == ("AUTH_UNAVAILABLE", 503)
