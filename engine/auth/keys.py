"""The local signing key of ``auth.mode: local``: an EC P-256 (ES256) key pair made on first use.

The private key is written with mode 0600 under ``<state dir>/auth/`` (the state directory is where the
embedded store keeps ``journal.db``: ``var/`` by default). Several processes may start at once: the key is
written to a temporary file and linked into place, so exactly one key wins and every process reads it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

if TYPE_CHECKING:
    from engine.config import AuthConfig, EngineConfig

PRIVATE_NAME = "es256-private.pem"
ALGORITHM = "ES256"


def state_dir(cfg: EngineConfig) -> Path:
    """Where the engine keeps its local state: the directory of an SQLite store file, else ``var``."""
    url = cfg.store.url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            return Path(path).parent
    return Path("var")


def key_dir(settings: AuthConfig, state: Path) -> Path:
    return Path(settings.local.key_dir) if settings.local.key_dir else state / "auth"


def load_or_create(directory: Path) -> ec.EllipticCurvePrivateKey:
    """The private key in ``directory``, made (0600) when there is none yet."""
    path = directory / PRIVATE_NAME
    if not path.exists():
        _create(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the local signing key is not an EC P-256 key")
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails when another process made the key first: theirs is kept
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The public key as a JWK with its RFC 7638 thumbprint as ``kid`` (for a JWKS endpoint)."""
    nums = key.public_numbers()
    jwk = {"crv": "P-256", "kty": "EC", "x": _b64(nums.x), "y": _b64(nums.y)}
    kid = base64.urlsafe_b64encode(hashlib.sha256(orjson.dumps(jwk, option=orjson.OPT_SORT_KEYS)).digest())
    return {**jwk, "kid": kid.rstrip(b"=").decode(), "use": "sig", "alg": ALGORITHM}


def _b64(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
