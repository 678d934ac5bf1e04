"""The FHIR R4 routes under ``/fhir``: metadata, Patient search/read/$everything, typed search, read, history.

Every route authenticates the caller, resolves the citizen the request concerns, asks the guard whether the
caller may read it, renders, writes the audit record, and only then answers. Responses are
``application/fhir+json``; errors are OperationOutcomes (:mod:`engine.api.errors`).
"""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from engine.api import search as srch
from engine.api.auditevent import audit_event
from engine.api.capability import capability_statement
from engine.api.errors import FhirError
from engine.api.guard import Access, Guard
from engine.api.reader import Found, Reader
from engine.auth.principal import Principal

__all__ = ["FHIR_JSON", "fhir_json", "router"]

FHIR_JSON = "application/fhir+json"
_Json = dict[str, Any]


def fhir_json(body: _Json, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


#: the header an ops caller states a break-the-glass reason in (audited with every read it allows)
BREAK_GLASS_HEADER = "x-break-glass-reason"


def _parts(request: Request) -> tuple[Reader, Guard, Principal]:
    state = request.app.state
    client = request.client.host if request.client else None
    principal = state.guard.principal(
        request.headers.get("authorization"),
        client,
        break_glass=request.headers.get(BREAK_GLASS_HEADER) or None,
        query=_query(request),
    )
    return state.reader, state.guard, principal


def _query(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _checked(guard: Guard, access: Access) -> None:
    """Ask the policy; a refusal is audited before the 403 leaves."""
    try:
        guard.allow(access)
    except FhirError as exc:
        guard.audit(replace(access, outcome=f"denied:{exc.code}"))
        raise


def _allow(
    guard: Guard, principal: Principal, action: str, rtype: str, found: Found | None, request: Request
) -> Access:
    """The access a request makes, after the policy allowed it (a refusal is audited, then raised)."""
    access = _access(principal, action, rtype, found, request)
    _checked(guard, access)
    return access


def _audited(guard: Guard, access: Access, resource_ids: Any) -> None:
    """Audit an allowed read with the ids of what it returns (before the response leaves)."""
    guard.audit(replace(access, resource_ids=tuple(resource_ids)))


def _access(principal: Principal, action: str, rtype: str, found: Found | None, request: Request) -> Access:
    return Access(
        principal=principal,
        action=action,
        resource_type=rtype,
        citizen=found.citizen.component if found else None,
        query=_query(request),
        identifier_keys=frozenset(found.citizen.keys) if found else frozenset(),
    )


def _bundle(request: Request, entries: list[_Json], total: int | None, search: srch.Search | None) -> _Json:
    base = str(request.base_url).rstrip("/") + "/fhir"
    bundle: _Json = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    links = [{"relation": "self", "url": str(request.url)}]
    if search is not None and total is not None:
        for relation, offset in (
            ("next", search.offset + search.count),
            ("previous", max(search.offset - search.count, 0)),
        ):
            if (relation == "next" and offset < total) or (relation == "previous" and search.offset > 0):
                links.append({"relation": relation, "url": str(request.url.include_query_params(_offset=offset))})
    bundle["link"] = links
    bundle["entry"] = [
        {"fullUrl": f"{base}/{e['resourceType']}/{e['id']}", "resource": e, "search": {"mode": "match"}}
        for e in entries
    ]
    return bundle


router = APIRouter(prefix="/fhir")


@router.get("/metadata")
def metadata(request: Request) -> Response:
    return fhir_json(capability_statement(str(request.base_url).rstrip("/") + "/fhir"))


@router.get("/Patient")
def patient_search(request: Request) -> Response:
    reader, guard, principal = _parts(request)
    params = list(request.query_params.multi_items())
    names = {n for n, _ in params}
    if names - {"identifier", "_count"} or "identifier" not in names:
        raise FhirError(400, "SEARCH_PARAMETER_INVALID", "Patient search supports identifier=system|value")
    system, _, value = request.query_params["identifier"].rpartition("|")
    found = reader.find(system, value) if value else None
    access = _access(principal, "search", "Patient", found, request)
    if found is None:  # asked about the identifier itself: a refusal must not depend on whether it exists
        asked = f"{system.removeprefix('urn:oid:')}|{value}"
        access = replace(access, identifier_keys=frozenset({asked}))
    _checked(guard, access)
    entries = [reader.patient(found)] if found else []
    _audited(guard, access, tuple(e["id"] for e in entries))
    return fhir_json(_bundle(request, entries, len(entries), None))


@router.get("/Patient/{fhir_id}")
def patient_read(fhir_id: str, request: Request) -> Response:
    reader, guard, principal = _parts(request)
    found = reader.citizen(fhir_id)
    access = _allow(guard, principal, "read", "Patient", found, request)
    body = reader.patient(found)
    _audited(guard, access, (fhir_id,))
    return fhir_json(body)


@router.get("/Patient/{fhir_id}/$everything")
def patient_everything(fhir_id: str, request: Request) -> Response:
    reader, guard, principal = _parts(request)
    found = reader.citizen(fhir_id)
    access = _allow(guard, principal, "everything", "Patient", found, request)
    entries = [reader.patient(found), *reader.resources(found), *reader.parties(found)]
    _audited(guard, access, tuple(e["id"] for e in entries))
    return fhir_json(_bundle(request, entries, len(entries), None))


@router.get("/AuditEvent")
def audit_search(request: Request) -> Response:
    reader, guard, principal = _parts(request)
    params = dict(request.query_params)
    if set(params) - {"patient", "_count"} or "patient" not in params:
        raise FhirError(400, "SEARCH_PARAMETER_INVALID", "AuditEvent search supports patient=ID and _count")
    count = srch.count(params.get("_count", "100"))
    found = reader.citizen(params["patient"].removeprefix("Patient/"))
    access = _allow(guard, principal, "search", "AuditEvent", found, request)
    guard.audit(access)  # reading an access log is itself a read that is logged
    entries = [
        audit_event(r, found.fhir_id)
        for r in request.app.state.audit_log.query(
            citizen=[found.citizen.component, *found.citizen.keys], newest_first=True, limit=count
        )
    ]
    return fhir_json(_bundle(request, entries, len(entries), None))


@router.get("/Provenance")
def provenance_search(request: Request) -> Response:
    reader, guard, principal = _parts(request)
    params = list(request.query_params.multi_items())
    if [n for n, _ in params] != ["target"]:
        raise FhirError(400, "SEARCH_PARAMETER_INVALID", "Provenance search supports target=TYPE/ID")
    rtype, _, fhir_id = params[0][1].partition("/")
    if not fhir_id:
        raise FhirError(400, "SEARCH_PARAMETER_INVALID", "search parameter target: TYPE/ID")
    entries, found = reader.provenances(rtype, fhir_id.split("/")[0])
    access = _allow(guard, principal, "search", "Provenance", found, request)
    _audited(guard, access, tuple(e["id"] for e in entries))
    return fhir_json(_bundle(request, entries, len(entries), None))


@router.get("/Provenance/{fhir_id}")
def provenance_read(fhir_id: str, request: Request) -> Response:
    reader, guard, principal = _parts(request)
    body, found = reader.provenance(fhir_id)
    access = _allow(guard, principal, "read", "Provenance", found, request)
    _audited(guard, access, (fhir_id,))
    return fhir_json(body)


def _page(found_resources: list[_Json], rtype: str, search: srch.Search) -> tuple[list[_Json], int]:
    hits = [r for r in found_resources if srch.matches(rtype, r, search)]
    if search.sort:
        key = "meta" if "_lastUpdated" in search.sort else "date"

        def order(r: _Json) -> str:
            if key == "meta":
                return str(r["meta"]["lastUpdated"])
            at = srch.when(rtype, r)
            return at.isoformat() if at else ""

        hits.sort(key=order, reverse=search.sort.startswith("-"))
    return hits[search.offset : search.offset + search.count], len(hits)


@router.get("/{rtype}")
def type_search(rtype: str, request: Request) -> Response:
    reader, guard, principal = _parts(request)
    search = srch.parse(rtype, list(request.query_params.multi_items()))
    assert search.patient is not None  # parse() requires it
    found = reader.citizen(search.patient)
    access = _allow(guard, principal, "search", rtype, found, request)
    page, total = _page(reader.resources(found, rtype), rtype, search)
    _audited(guard, access, tuple(e["id"] for e in page))
    return fhir_json(_bundle(request, page, total, search))


@router.get("/Binary/{sha256}")
def binary(sha256: str, request: Request) -> Response:
    """An attachment's bytes as they are (or, asked for ``application/fhir+json``, as a Binary resource)."""
    reader, guard, principal = _parts(request)
    content_type, data, found = reader.binary(sha256.lower())
    access = _allow(guard, principal, "read", "Binary", found, request)
    _audited(guard, access, (sha256.lower(),))
    if FHIR_JSON in request.headers.get("accept", ""):
        body = {
            "resourceType": "Binary",
            "id": sha256.lower(),
            "contentType": content_type,
            "data": base64.b64encode(data).decode("ascii"),
        }
        return fhir_json(body)
    return Response(data, media_type=content_type, headers={"Content-Disposition": "attachment"})


def _party_read(rtype: str, fhir_id: str, request: Request) -> Response:
    reader, guard, principal = _parts(request)
    body, found = reader.party(rtype, fhir_id)
    access = _allow(guard, principal, "read", rtype, found, request)
    _audited(guard, access, (fhir_id,))
    return fhir_json(body)


@router.get("/{rtype}/{fhir_id}")
def read(rtype: str, fhir_id: str, request: Request) -> Response:
    if rtype in ("Practitioner", "Organization"):
        return _party_read(rtype, fhir_id, request)
    reader, guard, principal = _parts(request)
    rec, row, found = reader.record(rtype, fhir_id)
    access = _allow(guard, principal, "read", rtype, found, request)
    body = reader.render(rec, row, found)
    _audited(guard, access, (fhir_id,))
    return fhir_json(body)


@router.get("/{rtype}/{fhir_id}/_history")
def history(rtype: str, fhir_id: str, request: Request) -> Response:
    reader, guard, principal = _parts(request)
    versions, found = reader.history(rtype, fhir_id)
    access = _allow(guard, principal, "history", rtype, found, request)
    entries = [reader.render(rec, row, found) for rec, row in versions]
    _audited(guard, access, (fhir_id,))
    bundle = _bundle(request, entries, len(entries), None)
    bundle["type"] = "history"
    for e in bundle["entry"]:
        e.pop("search", None)
    return fhir_json(bundle)


@router.get("/{rtype}/{fhir_id}/_history/{version}")
def vread(rtype: str, fhir_id: str, version: str, request: Request) -> Response:
    reader, guard, principal = _parts(request)
    versions, found = reader.history(rtype, fhir_id)
    access = _allow(guard, principal, "vread", rtype, found, request)
    hit = next(((rec, row) for rec, row in versions if row["version_hash"] == version), None)
    _audited(guard, access, (fhir_id,))
    if hit is None:
        raise FhirError(404, "NOT_FOUND", f"no such version of this {rtype}")
    return fhir_json(reader.render(hit[0], hit[1], found))
