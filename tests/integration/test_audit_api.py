"""The FHIR API behind :class:`engine.auth.guard.AuthGuard`, on SQLite and PostgreSQL, with local tokens:
no token or a bad signature -> 401, wrong scope / another citizen / ops without break-the-glass -> 403,
each denial and each allowed read in the audit log, whose chain holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from engine import ids
from engine.api.app import create_app
from engine.audit import AuditLog
from engine.auth import keys
from engine.auth.guard import AuthGuard
from engine.auth.tokens import issue
from engine.auth.verify import Authenticator
from engine.config import AuthConfig
from tests.helpers import fnr, fnr_id, observation, outcome, person

LOCAL = AuthConfig(mode="local")
FNR_SYSTEM = "urn:oid:" + ids.OID_FNR
A, B = fnr(51), fnr(52)


@pytest.fixture
def api(any_store: Any, tmp_path: Path) -> Iterator[tuple[TestClient, AuditLog, Path]]:
    a, b = fnr_id(51), fnr_id(52)
    any_store.commit_batch(
        [
            outcome("e1", [person(a, family="Nordmann"), observation("obs:a", a, 1.0, env_id="e1")]),
            outcome("e2", [person(b, family="Berg"), observation("obs:b", b, 2.0, env_id="e2")]),
        ]
    )
    log = AuditLog(any_store)
    guard = AuthGuard(Authenticator(LOCAL, tmp_path), log)
    with TestClient(create_app(any_store, guard)) as c:
        yield c, log, tmp_path


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _pid(client: TestClient, token: str, value: str) -> str:
    r = client.get("/fhir/Patient", params={"identifier": f"{FNR_SYSTEM}|{value}"}, headers=_h(token))
    assert r.status_code == 200, r.text
    return str(r.json()["entry"][0]["resource"]["id"])


def _last(log: AuditLog) -> Any:
    return log.query(newest_first=True, limit=1)[0]


def test_a_clinician_reads_and_each_read_is_audited(api: tuple[TestClient, AuditLog, Path]) -> None:
    client, log, state = api
    clin = issue(LOCAL, "clinician", state_dir=state, hpr="9144900", purpose="TREAT")
    pid = _pid(client, clin, A)
    r = client.get(f"/fhir/Patient/{pid}/$everything", headers=_h(clin))
    assert r.status_code == 200
    row = _last(log)
    assert (row.actor, row.role, row.purpose, row.outcome, row.reason_code) == (
        "hpr:9144900",
        "clinician",
        "TREAT",
        "allowed",
        "ALLOWED",
    )
    assert row.citizen_key == f"{ids.OID_FNR}|{A}" and pid in row.resource_ids
    assert row.query == f"/fhir/Patient/{pid}/$everything"
    assert log.verify() is None


def _denied(client: TestClient, log: AuditLog, path: str, headers: dict[str, str], status: int, code: str) -> None:
    before = log.head()[0]
    r = client.get(path, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == code
    row = _last(log)
    assert row.id == before + 1 and (row.outcome, row.reason_code) == ("denied", code)


def test_no_token_or_a_bad_one_is_401_and_audited(api: tuple[TestClient, AuditLog, Path]) -> None:
    client, log, state = api
    _denied(client, log, "/fhir/Patient/x", {}, 401, "TOKEN_MISSING")
    forged = jwt.encode(
        {"iss": "enjournal-local", "aud": "enjournal", "sub": "s", "exp": 4102444800, "enjournal_role": "ops"},
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
    )
    _denied(client, log, "/fhir/Patient/x", _h(forged), 401, "TOKEN_BAD_SIGNATURE")
    expired = issue(LOCAL, "ops", state_dir=state, ttl=60, now=datetime(2020, 1, 1, tzinfo=UTC))
    _denied(client, log, "/fhir/Patient/x", _h(expired), 401, "TOKEN_EXPIRED")
    assert _last(log).actor == "anonymous" and log.verify() is None


def test_the_policy_refusals_are_403_and_audited(api: tuple[TestClient, AuditLog, Path]) -> None:
    client, log, state = api
    clin = issue(LOCAL, "clinician", state_dir=state, hpr="9144900", purpose="TREAT")
    pa, pb = _pid(client, clin, A), _pid(client, clin, B)
    citizen = issue(LOCAL, "citizen", state_dir=state, pid=A)
    assert client.get(f"/fhir/Patient/{pa}", headers=_h(citizen)).status_code == 200
    _denied(client, log, f"/fhir/Patient/{pb}", _h(citizen), 403, "DENIED_NOT_OWN_CITIZEN")
    assert _last(log).citizen_key == f"{ids.OID_FNR}|{B}"
    ops = issue(LOCAL, "ops", state_dir=state)
    _denied(client, log, f"/fhir/Patient/{pa}/$everything", _h(ops), 403, "DENIED_CLINICAL_CONTENT")
    auditor = issue(LOCAL, "auditor", state_dir=state)
    _denied(client, log, f"/fhir/Patient/{pa}", _h(auditor), 403, "DENIED_RESOURCE_TYPE")
    assert log.verify() is None


def test_a_token_without_the_scope_is_403_and_audited(api: tuple[TestClient, AuditLog, Path]) -> None:
    client, log, state = api
    clin = issue(LOCAL, "clinician", state_dir=state, hpr="9144900", purpose="TREAT")
    pa = _pid(client, clin, A)
    now = datetime.now(UTC)
    narrow = jwt.encode(
        {
            "iss": "enjournal-local",
            "aud": "enjournal",
            "sub": "s",
            "exp": now + timedelta(minutes=5),
            "helseid://claims/hpr/hpr_number": "9144900",
            "purpose_of_use": "TREAT",
            "scope": "user/Condition.rs",
        },
        keys.load_or_create(state / "auth"),
        algorithm="ES256",
    )
    _denied(client, log, f"/fhir/Patient/{pa}", _h(narrow), 403, "DENIED_SCOPE")
    assert _last(log).actor == "hpr:9144900"


def test_ops_break_the_glass_is_allowed_and_flagged(api: tuple[TestClient, AuditLog, Path]) -> None:
    client, log, state = api
    clin = issue(LOCAL, "clinician", state_dir=state, hpr="9144900", purpose="TREAT")
    pa = _pid(client, clin, A)
    ops = issue(LOCAL, "ops", state_dir=state)
    r = client.get(f"/fhir/Patient/{pa}", headers={**_h(ops), "X-Break-Glass-Reason": "sender asks about msg 42"})
    assert r.status_code == 200
    row = _last(log)
    assert (row.outcome, row.reason_code, row.break_glass) == ("allowed", "ALLOWED_BREAK_GLASS", row.break_glass)
    assert row.break_glass


def test_a_citizen_cannot_probe_whether_another_identifier_exists(api: tuple[TestClient, AuditLog, Path]) -> None:
    client, log, state = api
    citizen = issue(LOCAL, "citizen", state_dir=state, pid=A)
    for other in (B, fnr(99)):  # one exists, one does not: the same answer
        r = client.get("/fhir/Patient", params={"identifier": f"{FNR_SYSTEM}|{other}"}, headers=_h(citizen))
        assert r.status_code == 403 and _last(log).reason_code == "DENIED_NOT_OWN_CITIZEN"
    assert (
        client.get("/fhir/Patient", params={"identifier": f"{FNR_SYSTEM}|{A}"}, headers=_h(citizen)).json()["total"]
        == 1
    )


def test_a_citizen_sees_who_read_their_journal(api: tuple[TestClient, AuditLog, Path]) -> None:
    from fhir.resources.R4B.auditevent import AuditEvent

    client, log, state = api
    clin = issue(LOCAL, "clinician", state_dir=state, hpr="9144900", purpose="TREAT")
    pa, pb = _pid(client, clin, A), _pid(client, clin, B)
    assert client.get(f"/fhir/Patient/{pa}/$everything", headers=_h(clin)).status_code == 200
    citizen = issue(LOCAL, "citizen", state_dir=state, pid=A)
    r = client.get("/fhir/AuditEvent", params={"patient": pa}, headers=_h(citizen))
    assert r.status_code == 200, r.text
    events = [e["resource"] for e in r.json()["entry"]]
    for e in events:
        AuditEvent.model_validate(e)
    readers = {e["agent"][0]["who"]["display"] for e in events}
    assert "hpr:9144900" in readers
    assert all(e["entity"][0]["what"]["reference"] == f"Patient/{pa}" for e in events)
    _denied(client, log, "/fhir/AuditEvent?patient=" + pb, _h(citizen), 403, "DENIED_NOT_OWN_CITIZEN")
    _denied(client, log, "/fhir/AuditEvent?patient=" + pa, _h(clin), 403, "DENIED_RESOURCE_TYPE")
    auditor = issue(LOCAL, "auditor", state_dir=state)
    assert client.get("/fhir/AuditEvent", params={"patient": pb}, headers=_h(auditor)).status_code == 200
    assert log.verify() is None
