"""The ops API: a small read-only HTTP endpoint for health checks and monitoring.

``GET /health`` (200 when bus and store answer, else 503), ``GET /status`` (JSON: counts per adapter,
records per kind, dead letters, identity conflicts, queue depth), ``GET /metrics`` (Prometheus text).
No personal data is ever served: only counts, names of adapters and codes. Enabled by ``ops.port``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from engine.errors import EnjournalError


def _status(runtime: Any) -> dict[str, Any]:
    counts = runtime.store.counts()
    try:
        counts["queue"] = runtime.bus.depth()
    except EnjournalError as exc:
        counts["queue"] = {"error": exc.code}
    return counts


def _metrics(counts: dict[str, Any]) -> str:
    lines = ["# TYPE enjournal_received_total counter"]
    lines += [f'enjournal_received_total{{adapter="{a}"}} {n}' for a, n in sorted(counts["received"].items())]
    lines.append("# TYPE enjournal_dead_letters gauge")
    lines += [f'enjournal_dead_letters{{adapter="{a}"}} {n}' for a, n in sorted(counts["dead_letters"].items())]
    lines.append("# TYPE enjournal_records gauge")
    lines += [f'enjournal_records{{kind="{k}"}} {n}' for k, n in sorted(counts["records"].items())]
    lines.append(f"enjournal_identity_conflicts {counts['conflicts']}")
    for q, n in sorted(counts.get("queue", {}).items()):
        if isinstance(n, int):
            lines.append(f'enjournal_queue_depth{{queue="{q}"}} {n}')
    return "\n".join(lines) + "\n"


def _handler(runtime: Any) -> type[BaseHTTPRequestHandler]:
    routes: dict[str, Callable[[], tuple[int, str, str]]] = {
        "/health": lambda: _health(runtime),
        "/status": lambda: (200, "application/json", json.dumps(_status(runtime))),
        "/metrics": lambda: (200, "text/plain; version=0.0.4", _metrics(_status(runtime))),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            route = routes.get(self.path.split("?", 1)[0])
            code, ctype, body = route() if route else (404, "text/plain", "not found\n")
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:  # access logs off: paths only, but keep it quiet
            return

    return Handler


def _health(runtime: Any) -> tuple[int, str, str]:
    try:
        runtime.bus.check()
        runtime.store.check()
    except EnjournalError as exc:
        return 503, "application/json", json.dumps({"status": "down", "code": exc.code})
    return 200, "application/json", json.dumps({"status": "ok"})


def serve(runtime: Any, host: str, port: int) -> ThreadingHTTPServer:
    """Start the ops API in a daemon thread; call ``shutdown()`` on the result to stop it."""
    server = ThreadingHTTPServer((host, port), _handler(runtime))
    threading.Thread(target=server.serve_forever, name="ops-api", daemon=True).start()
    return server
