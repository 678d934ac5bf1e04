"""``enjournal serve``: the FHIR API on uvicorn, on the engine's store.

The app is built by :func:`factory` in each uvicorn worker process from the config file named by
``ENJOURNAL_CONFIG`` (so ``--workers N`` gives N processes, each with its own store pool). uvicorn's access
log is off: its lines carry query strings, which may hold a national id (``Patient?identifier=``); a
middleware logs method, route, status and duration instead.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

from engine import logging as elog
from engine.api.app import create_app
from engine.api.guard import OpenGuard
from engine.config import EngineConfig, load_config
from engine.errors import ConfigError
from engine.store import Store

__all__ = ["build", "factory", "serve"]

log = structlog.get_logger("enjournal.api")
CONFIG_VARIABLE = "ENJOURNAL_CONFIG"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def build(cfg: EngineConfig, store: Store | None = None) -> FastAPI:
    """The app for ``cfg`` (the store from the config unless given)."""
    store = store or Store(cfg.store.url, pool_size=cfg.store.pool_size)
    app = create_app(store, OpenGuard())

    @app.middleware("http")
    async def _log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        log.info(
            "api.request",
            method=request.method,
            route=getattr(route, "path", "unrouted"),
            status=response.status_code,
            ms=round((time.perf_counter() - t0) * 1000, 1),
        )
        return response

    return app


def factory() -> FastAPI:
    """The app of the config file ``ENJOURNAL_CONFIG`` names (uvicorn's factory, once per worker process,
    which configures the engine's masking log pipeline for itself)."""
    cfg = load_config(Path(os.environ[CONFIG_VARIABLE]))
    elog.configure(cfg.log.level, cfg.log.format)
    return build(cfg)


def serve(config: Path, cfg: EngineConfig, host: str, port: int, workers: int) -> None:
    """Run the API until interrupted. Unauthenticated access is refused off the loopback interface."""
    if not _loopback(host):
        raise ConfigError("the API runs without authentication: bind it to 127.0.0.1 (auth.mode none)")
    log.warning("api.unauthenticated", host=host, port=port)
    os.environ[CONFIG_VARIABLE] = str(config.resolve())
    uvicorn.run(
        "engine.api.serve:factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
    )
