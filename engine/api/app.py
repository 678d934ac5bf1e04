"""The read side's ASGI application: ``create_app(store, guard)`` -> FastAPI with the FHIR routes.

Errors of every kind leave as OperationOutcomes: a :class:`~engine.api.errors.FhirError` with its status, a
request FastAPI cannot route as 404, anything else as 500 logged by the error's type only (no traceback to
the client, no personal data in the log).
"""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from engine.api.errors import FhirError, operation_outcome
from engine.api.fhir import fhir_json, router
from engine.api.guard import Guard
from engine.api.reader import Reader
from engine.store import Store

__all__ = ["create_app"]

log = structlog.get_logger("enjournal.api")


def create_app(store: Store, guard: Guard) -> FastAPI:
    """The FHIR API over ``store``, every request through ``guard`` (authentication, policy, audit)."""
    app = FastAPI(title="enjournal", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.reader = Reader(store)
    app.state.guard = guard
    app.include_router(router)

    @app.exception_handler(FhirError)
    async def _fhir_error(_request: Request, exc: FhirError) -> Response:
        return fhir_json(operation_outcome(exc.status, exc.code, exc.diagnostics), exc.status, exc.headers)

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> Response:
        code = "NOT_FOUND" if exc.status_code == 404 else "HTTP_ERROR"
        return fhir_json(operation_outcome(exc.status_code, code, "no such route"), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, _exc: RequestValidationError) -> Response:
        return fhir_json(operation_outcome(400, "REQUEST_INVALID", "the request is not valid"), 400)

    @app.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> Response:
        log.error("api.request_failed", error=type(exc).__name__)
        return fhir_json(operation_outcome(500, "INTERNAL", "the server failed to answer"), 500)

    return app
