"""Configuration: one YAML file, validated by pydantic at start-up.

The file declares the bus, the store, the workers and named adapter instances. Adapters are a
discriminated union on ``type`` (each adapter module contributes its ``Settings`` model); every
model forbids unknown keys. The adapter kinds and the mapping names come from :mod:`engine.registry`:
an unknown ``type`` or ``mapping`` is an error naming the adapter and the field, with the closest known
name. Secrets never come from the file: passwords are read from ``ENJOURNAL_BUS_PASSWORD`` /
``ENJOURNAL_STORE_PASSWORD``; a URL with a password in the file (``user:pw@`` or a query key such as
``?password=``) is an error, and so is a bus URL naming a user (other than RabbitMQ's local ``guest``) when
``ENJOURNAL_BUS_PASSWORD`` is not set. ``ENJOURNAL_BUS_URL`` / ``ENJOURNAL_STORE_URL`` override the URLs
(handy in CI).

Example::

    bus: {kind: rabbitmq, url: "amqp://guest@127.0.0.1:5672/%2F", queue_type: quorum}
    store: {url: "postgresql+psycopg://enjournal@127.0.0.1/enjournal"}
    auth:  # who may read through `enjournal serve` (default: local, tokens from `enjournal token`)
      mode: oidc
      oidc: {issuer: "https://helseid-sts.nhn.no", audience: "enjournal", jwks_url: "https://helseid-sts.nhn.no/.well-known/openid-configuration/jwks"}
    adapters:
      lab-files:
        type: hl7-file
        mapping: hl7v2
        directory: /srv/enjournal/in/lab
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from engine import registry
from engine.errors import ConfigError
from engine.limits import ATTACHMENT_DEFAULT_MAX_BYTES, RABBITMQ_DEFAULT_MESSAGE_BYTES, fit_to_bus
from engine.redact import safe_reason

if TYPE_CHECKING:
    from engine.plugin import AdapterSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: query keys that carry a secret (``?password=``, ``?sslpassword=``, ``?token=``), in any case
_SECRET_KEY = re.compile(r"passw|pwd|pass$|secret|token|api[_-]?key|credential", re.IGNORECASE)
#: query keys that look like one but name a file or a method, not a secret (libpq)
_NOT_SECRET_KEYS = frozenset({"passfile", "require_auth"})


def _no_password(url: str) -> str:
    """Refuse a URL that carries a secret: ``user:pw@`` or a secret-looking query key. The message names
    the key, never the value (pydantic's error is printed without the input)."""
    parts = urlsplit(url)
    if parts.password:
        raise ValueError("a password in the URL is not allowed in the file; set it in the environment")
    for key, _value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() not in _NOT_SECRET_KEYS and _SECRET_KEY.search(key):
            raise ValueError(
                f"a secret in the URL query ({safe_reason(key)[:40]!r}) is not allowed in the file; "
                "set the password in the environment"
            )
    return url


def _with_password(url: str, password: SecretStr | None) -> str:
    if not password:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{quote(user, safe='')}:{quote(password.get_secret_value(), safe='')}@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class EmbeddedBusConfig(_Strict):
    """Durable local queue (SQLite file): no broker server needed."""

    kind: Literal["embedded"] = "embedded"
    path: str = "var/queue.db"
    lease_seconds: float = 60.0
    delivery_limit: int = 5


class RabbitBusConfig(_Strict):
    kind: Literal["rabbitmq"] = "rabbitmq"
    url: str = "amqp://guest@127.0.0.1:5672/%2F"
    password: SecretStr | None = Field(default=None, exclude=True)
    exchange: str = "enjournal.inbound"
    queue: str = "enjournal.work"
    dead_letter_exchange: str = "enjournal.dlx"
    dead_letter_queue: str = "enjournal.dead"
    queue_type: Literal["classic", "quorum"] = "classic"
    delivery_limit: int = 5
    prefetch: int = 1000
    confirm_timeout: float = 30.0
    #: envelopes published together travel as frames of at most this many envelopes / body bytes
    #: (:mod:`engine.bus.wire`); 1 = one AMQP message per envelope
    frame_envelopes: int = Field(default=64, ge=1, le=10_000)
    frame_bytes: int = Field(default=256 * 1024, ge=1024)
    #: the broker's largest message (RabbitMQ ``max_message_size``: 16 MiB by default on 4.x, 128 MiB on
    #: 3.8-3.13); adapter limits left unset are lowered to fit it, set ones that do not fit are refused
    #: (:mod:`engine.limits`)
    max_message_bytes: int = Field(default=RABBITMQ_DEFAULT_MESSAGE_BYTES, ge=1024 * 1024, le=512 * 1024 * 1024)

    _check_url = field_validator("url")(classmethod(lambda cls, v: _no_password(v)))

    def url_with_secret(self) -> str:
        """The URL with the password from the environment; a user without one is a ConfigError."""
        pw = self.password or _env_secret("ENJOURNAL_BUS_PASSWORD")
        url = self.url
        user = urlsplit(url).username
        if not pw and user == "guest":
            pw = SecretStr("guest")  # RabbitMQ's well-known local default, not a secret
        if not pw and user:
            raise ConfigError("field 'bus.url' names a user but ENJOURNAL_BUS_PASSWORD is not set")
        return _with_password(url, pw)


BusConfig = Annotated[EmbeddedBusConfig | RabbitBusConfig, Field(discriminator="kind")]


class StoreConfig(_Strict):
    url: str = "sqlite:///var/journal.db"
    pool_size: int = 4
    #: attachments larger than this are not stored (their records are flagged ``ATTACHMENT_TOO_LARGE``; the
    #: bytes stay in the raw archive); PostgreSQL's bytea holds at most 1 GB
    max_attachment_bytes: int = Field(default=ATTACHMENT_DEFAULT_MAX_BYTES, ge=0, le=512 * 1024 * 1024)

    _check_url = field_validator("url")(classmethod(lambda cls, v: _no_password(v)))

    def url_with_secret(self) -> str:
        return _with_password(self.url, _env_secret("ENJOURNAL_STORE_PASSWORD"))


class WorkerConfig(_Strict):
    count: int = Field(default=1, ge=1, le=64)  # worker threads per process
    processes: int = Field(default=1, ge=1, le=64)  # processes running workers (one per core scales mapping)
    #: run worker threads in the process that runs the adapters too. False keeps that process (and an MLLP
    #: listener's ACKs) free of mapping work: all ``processes`` are then separate worker processes.
    in_intake_process: bool = True
    batch_size: int = Field(default=500, ge=1, le=10000)
    batch_wait_ms: int = Field(default=50, ge=0, le=10000)
    prefetch: int = Field(default=1000, ge=1)


class OpsConfig(_Strict):
    host: str = "127.0.0.1"
    port: int | None = None  # ops HTTP API; off when None


class LogConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"


#: JWS algorithms a token may be signed with: asymmetric only (never ``none``, never a shared-secret HS*)
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})


class ClaimNames(_Strict):
    """Where a token carries what the read side needs (HelseID / ID-porten style by default)."""

    hpr: str = "helseid://claims/hpr/hpr_number"
    pid: str = "pid"
    purpose: str = "purpose_of_use"
    scope: str = "scope"
    #: an explicit role (``clinician``, ``citizen``, ``ops``, ``auditor``); without it an HPR claim means a
    #: clinician and a national-id claim a citizen
    role: str = "enjournal_role"


class LocalAuthConfig(_Strict):
    """``auth.mode: local``: an ES256 key pair made on first use under ``key_dir`` (default: the state
    directory's ``auth/``); ``enjournal token`` signs with it."""

    key_dir: str | None = None
    issuer: str = "enjournal-local"
    audience: str = "enjournal"
    ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)


class OidcAuthConfig(_Strict):
    """``auth.mode: oidc``: tokens from an identity provider, verified with its JWKS (cached)."""

    issuer: str
    audience: str
    jwks_url: str
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"], min_length=1)
    jwks_cache_seconds: int = Field(default=300, ge=0)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(f"only asymmetric algorithms are allowed ({', '.join(sorted(ASYMMETRIC_ALGORITHMS))})")
        return v

    _check_url = field_validator("jwks_url")(classmethod(lambda cls, v: _no_password(v)))


class AuthConfig(_Strict):
    """Who may read (``enjournal serve``): ``none`` (no authentication, only on 127.0.0.1), ``local`` (the
    embedded default: tokens signed by a local key) or ``oidc`` (production: an identity provider)."""

    mode: Literal["none", "local", "oidc"] = "local"
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    claims: ClaimNames = Field(default_factory=ClaimNames)
    local: LocalAuthConfig = Field(default_factory=LocalAuthConfig)
    oidc: OidcAuthConfig | None = None

    @model_validator(mode="after")
    def _oidc_needs_settings(self) -> AuthConfig:
        if self.mode == "oidc" and self.oidc is None:
            raise ValueError("auth.mode oidc needs an 'oidc' section (issuer, audience, jwks_url)")
        return self


def _env_secret(name: str) -> SecretStr | None:
    v = os.environ.get(name)
    return SecretStr(v) if v else None


class EngineConfig(_Strict):
    """The config file's root. :func:`config_model` adds ``adapters``: a union over the registry's adapter kinds
    (discriminated by ``type``), known only once the adapters are loaded."""

    bus: BusConfig = Field(default_factory=EmbeddedBusConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    workers: WorkerConfig = Field(default_factory=WorkerConfig)
    ops: OpsConfig = Field(default_factory=OpsConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    if TYPE_CHECKING:
        adapters: dict[str, AdapterSettings]


@lru_cache(maxsize=8)
def config_model(plugins: tuple[str, ...] = ()) -> type[EngineConfig]:
    """The root config model over the built-in adapter kinds and the third-party ones named in ``plugins``
    (only those are loaded: an installed plugin the config does not use cannot break it). Built once each."""
    kinds = [p for p in registry.adapters() if p.origin == "built-in" or p.name in plugins]
    classes = tuple(plugin.settings for plugin in kinds)
    # a union of a runtime tuple of types can only be spelled Union[...]
    settings = Annotated[Union[classes], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
    return create_model(
        "EnjournalConfig",
        __base__=EngineConfig,
        adapters=(dict[str, settings], Field(default_factory=dict)),
    )


def _describe(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) >= 2 and parts[0] == "adapters":
        kinds = {plugin.name for plugin in registry.adapters()}
        rest = [p for p in parts[2:] if p not in kinds]
        field = ".".join(rest) or "type"
        return f"adapter {parts[1]!r}, field {field!r}"
    return f"field {'.'.join(parts)!r}"


def _third_party(adapters: object) -> tuple[str, ...]:
    """The adapter kinds ``adapters`` (the file's section, aliases replaced) names that are not built in."""
    if not isinstance(adapters, dict):
        return ()
    kinds = {s.get("type") for s in adapters.values() if isinstance(s, dict)}
    return tuple(sorted(k for k in kinds if isinstance(k, str) and k not in registry.BUILTIN_ADAPTERS))


def _plugin_names(adapters: object, source: str) -> object:
    """``adapters`` (the file's section) with each alias of an adapter kind or a mapping replaced by the name
    it stands for; a ConfigError naming each adapter whose ``type`` is unknown."""
    if not isinstance(adapters, dict):
        return adapters  # pydantic says what is wrong with it
    out: dict[Any, Any] = {}
    problems: list[str] = []
    for name, section in adapters.items():
        if isinstance(section, dict):
            section = dict(section)
            if isinstance(section.get("type"), str):
                try:
                    section["type"] = registry.adapter(section["type"]).name
                except ConfigError as exc:
                    problems.append(f"{source}: adapter {name!r}, field 'type': {exc}")
            if isinstance(section.get("mapping"), str):
                section["mapping"] = registry.mapping_name(section["mapping"])
        out[name] = section
    if problems:
        raise ConfigError("\n".join(problems))
    return out


def _check_mappings(config: EngineConfig, source: str) -> None:
    """Every adapter's ``mapping`` is a known name, or a ``module:function`` that imports."""
    problems: list[str] = []
    for name, settings in config.adapters.items():
        try:
            registry.mapping(settings.mapping)
        except ConfigError as exc:
            problems.append(f"{source}: adapter {name!r}, field 'mapping': {exc}")
    if problems:
        raise ConfigError("\n".join(problems))


def _env_urls(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the URLs ``ENJOURNAL_BUS_URL`` / ``ENJOURNAL_STORE_URL`` give (a bus URL means RabbitMQ)."""
    for env, path in (("ENJOURNAL_BUS_URL", "bus"), ("ENJOURNAL_STORE_URL", "store")):
        if os.environ.get(env):
            section = dict(data.get(path) or {})
            section["url"] = os.environ[env]
            if path == "bus":
                section.setdefault("kind", "rabbitmq")
            data = {**data, path: section}
    return data


def parse_config(data: object, source: str = "<config>") -> EngineConfig:
    """Validate a loaded YAML document; raise ConfigError naming the file, adapter and field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    data = _env_urls(data)
    if "adapters" in data:
        data = {**data, "adapters": _plugin_names(data["adapters"], source)}
    try:
        model = config_model(_third_party(data.get("adapters")))
    except ConfigError as exc:  # a third-party adapter kind that does not load or meet the contract
        raise ConfigError(f"{source}: {exc}") from None
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {_describe(tuple(e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)]
        raise ConfigError("\n".join(lines)) from None
    _check_mappings(config, source)
    return fit_to_bus(config, source)


def load_config(path: str | Path) -> EngineConfig:
    """Read and validate the YAML config at ``path``; relative paths in it stay relative to the CWD."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p}:{where}: not valid YAML") from None
    return parse_config(data, str(p))


def json_schema() -> dict[str, Any]:
    """The config's JSON Schema, over every adapter kind installed."""
    plugins = tuple(p.name for p in registry.adapters() if p.origin != "built-in")
    return config_model(plugins).model_json_schema()
