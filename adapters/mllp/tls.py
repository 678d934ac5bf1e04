"""TLS for the MLLP listener: server certificate plus (by default required) client certificates.

Example::

    tls:
      certfile: /etc/enjournal/mllp.crt     # server certificate chain (PEM)
      keyfile: /etc/enjournal/mllp.key      # its private key (PEM); omit when inside certfile
      cafile: /etc/enjournal/senders-ca.crt # CA(s) that sign the senders' client certificates
      require_client_cert: true             # CERT_REQUIRED: a sender without a valid cert is refused

The key password, if any, comes from ``ENJOURNAL_MLLP_KEY_PASSWORD`` (never from the file).
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from engine.errors import ConfigError

_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    certfile: Path
    keyfile: Path | None = None
    cafile: Path | None = None
    require_client_cert: bool = True
    minimum_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"

    @model_validator(mode="after")
    def _ca_for_clients(self) -> TlsSettings:
        if self.require_client_cert and self.cafile is None:
            raise ValueError("require_client_cert needs cafile (the CA that signs the senders' certificates)")
        return self


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """An SSLContext for the listener; ConfigError naming the file that cannot be loaded."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = _VERSIONS[tls.minimum_version]
    password = os.environ.get("ENJOURNAL_MLLP_KEY_PASSWORD") or None
    try:
        ctx.load_cert_chain(str(tls.certfile), str(tls.keyfile) if tls.keyfile else None, password=password)
    except (OSError, ssl.SSLError):
        raise ConfigError(f"tls: cannot load certificate/key from {tls.certfile}") from None
    if tls.cafile is not None:
        try:
            ctx.load_verify_locations(cafile=str(tls.cafile))
        except (OSError, ssl.SSLError):
            raise ConfigError(f"tls: cannot load CA file {tls.cafile}") from None
    ctx.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
    if tls.cafile is None:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_context(
    cafile: Path | str, certfile: Path | str | None = None, keyfile: Path | str | None = None
) -> ssl.SSLContext:
    """A client-side context (tests, benchmark): trust ``cafile``, present a certificate if given."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cafile))
    ctx.check_hostname = False
    if certfile is not None:
        ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    return ctx
