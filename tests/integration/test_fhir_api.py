"""The FHIR API (issue #21) on the embedded SQLite store and on PostgreSQL: metadata, Patient search and read,
$everything, typed search with paging, read, history and vread, merged identities (410), errors as
OperationOutcomes. Every resource served validates with ``fhir.resources`` (R4B)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class

from engine import ids
from engine.api.app import create_app
from engine.api.guard import OpenGuard
from engine.model import IdentityLink, MapContext, RecordStatus
from engine.outcome import Outcome
from mappings.hl7v2 import map_message as map_hl7
from mappings.kith import map_message as map_kith
from tests.conftest import FIXTURES
from tests.helpers import T0, envelope, fnr, fnr_id, observation, outcome, person

FNR_SYSTEM = "urn:oid:" + ids.OID_FNR
A, B = fnr(41), fnr(42)


def valid(data: dict[str, Any]) -> dict[str, Any]:
    get_fhir_model_class(data["resourceType"]).model_validate(data)
    if data["resourceType"] == "Bundle":
        for entry in data.get("entry", ()):
            valid(entry["resource"])
    return data


def _mapped(env_id: str, path: str, map_fn: Any) -> Outcome:
    raw = (FIXTURES / path).read_bytes()
    ctx = MapContext(envelope_id=env_id, adapter="lab", received_at=T0)
    return Outcome(envelope(env_id, raw), result=map_fn(raw, ctx))


@pytest.fixture
def client(any_store: Any) -> Iterator[TestClient]:
    a, b = fnr_id(41), fnr_id(42)
    any_store.commit_batch(
        [
            outcome("e1", [person(a, family="Nordmann")]),
            outcome(
                "e2",
                [
                    observation("obs:1", a, 1.0, minutes=10, env_id="e2"),
                    observation("obs:2", a, 2.0, minutes=20, env_id="e2"),
                    observation("obs:3", a, 3.0, minutes=30, status=RecordStatus.PRELIMINARY, env_id="e2"),
                ],
            ),
            outcome("e3", [observation("obs:1", a, 1.5, minutes=40, env_id="e3")]),
            outcome("e4", [person(b, family="Berg"), observation("obs:b", b, 9.0, env_id="e4")]),
            _mapped("e5", "hl7v2/no_ORU-R01_synthetic_8obx_8859-1.hl7", map_hl7),
            _mapped("e6", "kith/synthetic_svarrapport_v1.4.xml", map_kith),
        ]
    )
    with TestClient(create_app(any_store, OpenGuard())) as c:
        yield c


def _patient_id(client: TestClient, value: str) -> str:
    r = client.get("/fhir/Patient", params={"identifier": f"{FNR_SYSTEM}|{value}"})
    assert r.status_code == 200, r.text
    bundle = valid(r.json())
    assert bundle["total"] == 1
    return str(bundle["entry"][0]["resource"]["id"])


def test_metadata_is_a_capability_statement(client: TestClient) -> None:
    r = client.get("/fhir/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    assert valid(r.json())["fhirVersion"] == "4.0.1"


def test_patient_search_read_and_everything(client: TestClient) -> None:
    pid = _patient_id(client, A)
    patient = valid(client.get(f"/fhir/Patient/{pid}").json())
    assert patient["name"][0]["family"] == "Nordmann"
    assert {"system": FNR_SYSTEM, "value": A} in [{k: i[k] for k in ("system", "value")} for i in patient["identifier"]]
    everything = valid(client.get(f"/fhir/Patient/{pid}/$everything").json())
    types = [e["resource"]["resourceType"] for e in everything["entry"]]
    assert types[0] == "Patient" and types.count("Observation") == 3


def test_unknown_identifier_gives_an_empty_bundle(client: TestClient) -> None:
    r = client.get("/fhir/Patient", params={"identifier": f"{FNR_SYSTEM}|{fnr(99)}"})
    assert r.status_code == 200 and valid(r.json())["total"] == 0


def test_observation_search_filters_sorts_and_pages(client: TestClient) -> None:
    pid = _patient_id(client, A)
    r = client.get(
        "/fhir/Observation",
        params={"patient": pid, "code": "urn:oid:2.16.578.1.12.4.1.1.7280|NPU02593", "_sort": "-date", "_count": 2},
    )
    page1 = valid(r.json())
    assert page1["total"] == 3 and len(page1["entry"]) == 2
    values = [e["resource"]["valueQuantity"]["value"] for e in page1["entry"]]
    assert values == [1.5, 3.0]  # obs:1's newest version (minute 40), then obs:3 (minute 30)
    nxt = next(link["url"] for link in page1["link"] if link["relation"] == "next")
    page2 = valid(client.get(nxt).json())
    assert [e["resource"]["valueQuantity"]["value"] for e in page2["entry"]] == [2.0]
    prelim = valid(client.get("/fhir/Observation", params={"patient": pid, "status": "preliminary"}).json())
    assert prelim["total"] == 1
    day = T0.date().isoformat()
    assert valid(client.get("/fhir/Observation", params={"patient": pid, "date": f"ge{day}"}).json())["total"] == 3
    assert valid(client.get("/fhir/Observation", params={"patient": pid, "date": f"lt{day}"}).json())["total"] == 0


def test_read_history_and_vread(client: TestClient) -> None:
    pid = _patient_id(client, A)
    found = valid(client.get("/fhir/Observation", params={"patient": pid, "_sort": "date"}).json())
    first = found["entry"][0]["resource"]
    obs = next(e["resource"] for e in found["entry"] if e["resource"]["valueQuantity"]["value"] == 1.5)
    assert valid(client.get(f"/fhir/Observation/{first['id']}").json())["id"] == first["id"]
    hist = valid(client.get(f"/fhir/Observation/{obs['id']}/_history").json())
    assert hist["type"] == "history" and len(hist["entry"]) == 2
    old = hist["entry"][1]["resource"]
    again = valid(client.get(f"/fhir/Observation/{obs['id']}/_history/{old['meta']['versionId']}").json())
    assert again["valueQuantity"]["value"] == 1.0


def test_mapped_messages_serve_valid_resources(client: TestClient) -> None:
    for path, map_fn in (
        ("hl7v2/no_ORU-R01_synthetic_8obx_8859-1.hl7", map_hl7),
        ("kith/synthetic_svarrapport_v1.4.xml", map_kith),
    ):
        raw = (FIXTURES / path).read_bytes()
        result = map_fn(raw, MapContext(envelope_id="x", adapter="lab", received_at=T0))
        subject = result.records[0].subject
        r = client.get("/fhir/Patient", params={"identifier": f"urn:oid:{subject.system}|{subject.value}"})
        bundle = valid(r.json())
        if bundle["total"] == 0:  # a local identifier system is not an OID: search by its own name
            r = client.get("/fhir/Patient", params={"identifier": f"{subject.system}|{subject.value}"})
            bundle = valid(r.json())
        pid = bundle["entry"][0]["resource"]["id"]
        everything = valid(client.get(f"/fhir/Patient/{pid}/$everything").json())
        assert len(everything["entry"]) > 1


def test_a_merged_patient_is_gone_with_the_survivor(any_store: Any, client: TestClient) -> None:
    ids_ = {v: _patient_id(client, v) for v in (A, B)}
    any_store.commit_batch([outcome("e9", [], [IdentityLink(a=fnr_id(41), b=fnr_id(42), reason="merge")])])
    answers = {v: client.get(f"/fhir/Patient/{pid}") for v, pid in ids_.items()}
    gone = [r for r in answers.values() if r.status_code == 410]
    alive = [r for r in answers.values() if r.status_code == 200]
    assert len(gone) == 1 and len(alive) == 1
    body = valid(gone[0].json())
    assert body["issue"][0]["code"] == "deleted"
    assert gone[0].headers["location"] == f"Patient/{alive[0].json()['id']}"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/fhir/Observation?patient=x&colour=red", 400, "SEARCH_PARAMETER_INVALID"),
        ("/fhir/Observation?code=abc", 400, "SEARCH_PATIENT_REQUIRED"),
        ("/fhir/Observation?patient=x&date=yesterday", 400, "SEARCH_PARAMETER_INVALID"),
        ("/fhir/Observation?patient=x&_count=0", 400, "SEARCH_PARAMETER_INVALID"),
        ("/fhir/Observation?patient=nobody", 404, "NOT_FOUND"),
        ("/fhir/Patient/nobody", 404, "NOT_FOUND"),
        ("/fhir/Observation/nobody", 404, "NOT_FOUND"),
        ("/fhir/Spaceship?patient=x", 404, "TYPE_NOT_SUPPORTED"),
        ("/fhir/Patient?name=Kari", 400, "SEARCH_PARAMETER_INVALID"),
        ("/nowhere", 404, "NOT_FOUND"),
    ],
)
def test_errors_are_operation_outcomes(client: TestClient, path: str, status: int, code: str) -> None:
    r = client.get(path)
    assert r.status_code == status
    body = valid(r.json())
    assert body["issue"][0]["details"]["coding"][0]["code"] == code
    assert "Traceback" not in r.text


def test_provenance_of_every_version(client: TestClient) -> None:
    pid = _patient_id(client, A)
    found = valid(client.get("/fhir/Observation", params={"patient": pid}).json())
    obs = next(e["resource"] for e in found["entry"] if e["resource"]["valueQuantity"]["value"] == 1.5)
    bundle = valid(client.get("/fhir/Provenance", params={"target": f"Observation/{obs['id']}"}).json())
    assert bundle["total"] == 2
    newest = bundle["entry"][0]["resource"]
    assert newest["target"][0]["reference"] == f"Observation/{obs['id']}/_history/{obs['meta']['versionId']}"
    assert {"system": "urn:enjournal:envelope", "value": "e3"} in [e["what"]["identifier"] for e in newest["entity"]]
    assert newest["recorded"] != "1970-01-01T00:00:00+00:00"
    again = valid(client.get(f"/fhir/Provenance/{newest['id']}").json())
    assert again == newest
    assert client.get("/fhir/Provenance", params={"target": "Observation"}).status_code == 400


def test_an_attachment_is_served_as_binary(any_store: Any, client: TestClient) -> None:
    any_store.commit_batch([_mapped("e7", "hl7v2/no_ORU-R01_synthetic_fidelity_utf8.hl7", map_hl7)])
    pid = _patient_id(client, "14857240023")
    found = valid(client.get("/fhir/Observation", params={"patient": pid}).json())
    refs = [
        d["reference"]
        for e in found["entry"]
        for d in e["resource"].get("derivedFrom", ())
        if d["reference"].startswith("Binary/")
    ]
    assert len(refs) == 1
    raw = client.get(f"/fhir/{refs[0]}")
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/pdf"
    assert raw.content.startswith(b"%PDF-1.4")
    as_json = valid(client.get(f"/fhir/{refs[0]}", headers={"Accept": "application/fhir+json"}).json())
    assert as_json["contentType"] == "application/pdf"
    assert client.get("/fhir/Binary/" + "0" * 64).status_code == 404
