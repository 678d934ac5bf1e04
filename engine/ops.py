"""The ops API: a small read-only HTTP endpoint for health checks and monitoring. Enabled by ``ops.port``.

* ``GET /health/live``: 200 while the process serves requests (liveness).
* ``GET /health``: readiness. 200 ``{"status": "ok", ...}`` when every service of the engine runs
  (``runtime.health()``) and the bus and the store answer; otherwise 503 with ``down`` listing what is not
  (service names, ``bus``, ``store``). The reachability check is cached for two seconds.
* ``GET /status``: JSON: readiness, the broker's queue figures (cached), and what this engine run
  published, committed and dead-lettered per adapter (in-process counters). ``/status?counts=1`` adds the
  database's counts (received per adapter, records per kind, open dead letters, identity conflicts):
  scans of the largest tables, run only when asked, at most once per ten seconds.
* ``GET /metrics``: Prometheus text: the in-process counters of every process of the engine run
  (:mod:`engine.metrics`) and the cached broker and health figures. Never a database query.

What each costs is said in :mod:`engine.status`. No personal data is ever served: only counts, names of
adapters and services, and codes. A request whose handler fails anyway is answered 500 and logged by the
error's type (``ops.request_failed``), never printed as a traceback.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog

from engine import metrics
from engine.status import Monitor, Monitored

log = structlog.get_logger(__name__)
JSON = "application/json"
Response = tuple[int, str, bytes]


def _json(code: int, body: Any) -> Response:
    return code, JSON, json.dumps(body, default=str).encode()


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return any(v.lower() in ("1", "true", "yes") for v in query.get(name, []))


def routes(monitor: Monitor) -> dict[str, Callable[[dict[str, list[str]]], Response]]:
    """Path -> handler of the query string's values."""

    def health(_q: dict[str, list[str]]) -> Response:
        ready, body = monitor.health()
        return _json(200 if ready else 503, body)

    return {
        "/health/live": lambda _q: _json(200, {"status": "alive"}),
        "/health": health,
        "/status": lambda q: _json(200, monitor.status(with_counts=_flag(q, "counts"))),
        "/metrics": lambda _q: (200, metrics.CONTENT_TYPE, metrics.render(monitor.collector())),
    }


def _handler(monitor: Monitor) -> type[BaseHTTPRequestHandler]:
    table = routes(monitor)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server calls it by this name
            url = urlsplit(self.path)
            route = table.get(url.path.rstrip("/") or "/")
            try:
                code, ctype, body = route(parse_qs(url.query)) if route else (404, "text/plain", b"not found\n")
            except Exception as exc:  # noqa: BLE001 - http.server would print a traceback outside structlog
                log.error("ops.request_failed", path=url.path, error_type=type(exc).__name__)
                code, ctype, body = 500, "text/plain", b"internal error\n"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:  # access logs off: paths only, but keep it quiet
            return

    return Handler


def serve(runtime: Monitored, host: str, port: int) -> ThreadingHTTPServer:
    """Start the ops API in a daemon thread; call ``shutdown()`` on the result to stop it."""
    server = ThreadingHTTPServer((host, port), _handler(Monitor(runtime)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="ops-api", daemon=True).start()
    return server
