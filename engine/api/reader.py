"""The journal as FHIR resources: citizens and their current records, read from the store.

:class:`Reader` answers the API's questions without HTTP: find a citizen by identifier, load a citizen by its
FHIR id (410 with the survivor's id when the identity was merged into another), render the citizen's current
records, read one record and its versions. It records every FHIR id it hands out (:mod:`engine.store.read`),
so a later read by id finds its key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from engine import identity
from engine.api.errors import FhirError
from engine.fhir.patient import patient
from engine.fhir.provenance import provenance, provenance_id
from engine.fhir.refs import RESOURCE_TYPES, citizen_id, party_id
from engine.fhir.resources import party, resource
from engine.identity import AmbiguousIdentifier, Citizen
from engine.model import RECORD_TYPES, Person, Provenance, RecordBase, RecordStatus
from engine.store import Store
from engine.store import read as q
from engine.store.journal import current_versions, precedence

__all__ = ["Found", "Reader", "from_row"]

_Json = dict[str, Any]
_OID_PREFIX = "urn:oid:"
#: FHIR ids a process remembers having recorded (about 10 MB at most)
_KNOWN_IDS = 100_000
#: rendered resources a process keeps (about 50 MB at most); never shared between callers' responses mutably
_RENDERED = 50_000


def from_row(row: dict[str, Any]) -> RecordBase:
    """The model of a stored version (its provenance from the row; a cascaded cancellation's status)."""
    data = orjson.loads(row["content"])
    data["provenance"] = Provenance(
        adapter=row["adapter"], envelope_id=row["envelope_id"], source_message_id=row.get("source_message_id")
    )
    if row.get("cancelled_by"):
        data["status"] = RecordStatus.CANCELLED
    return RECORD_TYPES[row["kind"]].model_validate(data)


def _meta(res: _Json, row: dict[str, Any]) -> _Json:
    res["meta"] = {
        "versionId": row["version_hash"],
        "lastUpdated": datetime.fromtimestamp(row["event_us"] / 1e6, tz=UTC).isoformat(),
    }
    return res


@dataclass(frozen=True)
class Found:
    """A citizen the API resolved: its FHIR id, identity, and current record rows."""

    fhir_id: str
    citizen: Citizen
    rows: list[dict[str, Any]]

    @property
    def subject(self) -> str:
        return f"Patient/{self.fhir_id}"


class Reader:
    """Read-side queries over one store (thread-safe: every call takes its own connection)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._known: set[str] = set()
        self._keys: dict[str, tuple[str, str]] = {}
        #: rendered resources by (record key, version, status, subject): a version renders the same every time
        self._rendered: dict[tuple[str, str, str, str], tuple[_Json, list[tuple[str, str, str]]]] = {}

    # -- citizens --------------------------------------------------------------------------------------

    def find(self, system: str, value: str) -> Found | None:
        """The citizen an identifier (FHIR ``system|value``; system ``urn:oid:<oid>`` or a local name) names."""
        key = f"{system.removeprefix(_OID_PREFIX)}|{value}" if system else value
        try:
            with self.store.engine.connect() as c:
                citizen = identity.resolve(c, key)
        except AmbiguousIdentifier as exc:
            raise FhirError(400, exc.code, "the identifier value belongs to several citizens: give its system") from exc
        return None if citizen is None else self._found(citizen)

    def citizen(self, fhir_id: str) -> Found:
        """The citizen with this FHIR id; 404 when never served, 410 (with the survivor) when merged away."""
        with self.store.engine.connect() as c:
            known = self._key_of(c, fhir_id)
            if known is None or known[0] != "patient":
                raise FhirError(404, "NOT_FOUND", "no Patient with this id")
            label = known[1]
            now = q.component_of(c, label)
            if now is not None and now != label:
                survivor = citizen_id(now)
                raise FhirError(
                    410,
                    "PATIENT_MERGED",
                    f"this Patient was merged into Patient/{survivor}",
                    headers={"Location": f"Patient/{survivor}"},
                )
            found = identity.resolve(c, label)
        if found is None:
            raise FhirError(404, "NOT_FOUND", "no Patient with this id")
        return self._found(found)

    def _found(self, citizen: Citizen) -> Found:
        rows, _history = current_versions(self.store.versions_for(citizen.keys))
        fid = citizen_id(citizen.component)
        self._remember([(fid, "patient", citizen.component)])
        return Found(fid, citizen, rows)

    def patient(self, found: Found) -> _Json:
        records = (from_row(row) for row in found.rows if row["kind"] == "person")
        return patient(found.fhir_id, found.citizen.identifiers, [p for p in records if isinstance(p, Person)])

    # -- records ---------------------------------------------------------------------------------------

    def resources(self, found: Found, resource_type: str | None = None) -> list[_Json]:
        """The citizen's current records as resources (of one type, or all), with meta; ids remembered."""
        out: list[_Json] = []
        ids: list[tuple[str, str, str]] = []
        for row in found.rows:
            kind = row["kind"]
            if kind == "person" or (resource_type is not None and RESOURCE_TYPES.get(kind) != resource_type):
                continue
            cache_key = (row["record_key"], row["version_hash"], row["status"], found.subject)
            hit = self._rendered.get(cache_key)
            if hit is None:
                rec = from_row(row)
                hit = (
                    _meta(resource(rec, found.subject), row),
                    [(party_id(p), "party", rec.key) for p in rec.parties or ()],
                )
                if len(self._rendered) > _RENDERED:
                    self._rendered.clear()
                self._rendered[cache_key] = hit
            out.append(hit[0])
            ids.append((hit[0]["id"], kind, row["record_key"]))
            ids.extend(hit[1])
        self._remember(ids)
        return out

    def parties(self, found: Found) -> list[_Json]:
        """Practitioners and organisations named on the citizen's current records (each once)."""
        seen: dict[str, _Json] = {}
        for row in found.rows:
            if row["kind"] == "person" or '"parties"' not in row["content"]:
                continue
            for p in from_row(row).parties or ():
                seen.setdefault(party_id(p), party(p))
        return list(seen.values())

    def record(self, resource_type: str, fhir_id: str) -> tuple[RecordBase, dict[str, Any], Found]:
        """The current version of the record with this FHIR id, with its row and citizen."""
        key, versions = self._versions(resource_type, fhir_id)
        current, _history = current_versions(versions)
        row = current[0]
        subject = row["subject_key"]
        found = self.find("", subject) if "|" in subject else None
        if found is None:
            raise FhirError(404, "NOT_FOUND", f"no {resource_type} with this id")
        row = next((r for r in found.rows if r["record_key"] == key), row)
        return from_row(row), row, found

    def history(self, resource_type: str, fhir_id: str) -> tuple[list[tuple[RecordBase, dict[str, Any]]], Found]:
        """Every version of a record, newest first, with the citizen it is about."""
        _key, versions = self._versions(resource_type, fhir_id)
        newest = sorted(versions, key=precedence, reverse=True)
        found = self.find("", newest[0]["subject_key"])
        if found is None:
            raise FhirError(404, "NOT_FOUND", f"no {resource_type} with this id")
        return [(from_row(r), r) for r in newest], found

    def render(self, rec: RecordBase, row: dict[str, Any], found: Found) -> _Json:
        return _meta(resource(rec, found.subject), row)

    def party(self, resource_type: str, fhir_id: str) -> tuple[_Json, Found]:
        """A Practitioner or Organization by id, with the citizen of the record that named it."""
        with self.store.engine.connect() as c:
            known = self._key_of(c, fhir_id)
            if known is None or known[0] != "party":
                raise FhirError(404, "NOT_FOUND", f"no {resource_type} with this id")
            versions = q.versions_of(c, known[1])
        for rec in (from_row(r) for r in versions):
            for p in rec.parties or ():
                res = party(p)
                if party_id(p) == fhir_id and res["resourceType"] == resource_type:
                    found = self.find("", rec.subject.key)
                    if found is not None:
                        return res, found
        raise FhirError(404, "NOT_FOUND", f"no {resource_type} with this id")

    def provenances(self, resource_type: str, fhir_id: str) -> tuple[list[_Json], Found]:
        """The Provenance of every version of a record (newest first), with the citizen it is about."""
        versions, found = self.history(resource_type, fhir_id)
        rows = [row for _rec, row in versions]
        with self.store.engine.connect() as c:
            meta = q.envelope_meta(c, [r["envelope_id"] for r in rows])
        out = [provenance(r, meta.get(r["envelope_id"])) for r in rows]
        self._remember([(p["id"], "provenance", r["record_key"]) for p, r in zip(out, rows, strict=True)])
        return out, found

    def provenance(self, fhir_id: str) -> tuple[_Json, Found]:
        """One Provenance by id (served before by :meth:`provenances`)."""
        with self.store.engine.connect() as c:
            known = self._key_of(c, fhir_id)
            if known is None or known[0] != "provenance":
                raise FhirError(404, "NOT_FOUND", "no Provenance with this id")
            rows = [
                r for r in q.versions_of(c, known[1]) if provenance_id(r["record_key"], r["version_hash"]) == fhir_id
            ]
            meta = q.envelope_meta(c, [r["envelope_id"] for r in rows])
        found = self.find("", rows[0]["subject_key"]) if rows else None
        if found is None:
            raise FhirError(404, "NOT_FOUND", "no Provenance with this id")
        return provenance(rows[0], meta.get(rows[0]["envelope_id"])), found

    def binary(self, sha256: str) -> tuple[str, bytes, Found]:
        """(content type, bytes, citizen) of a stored attachment; its citizen is the subject of the record
        that first brought it."""
        subject = self.store.attachment_subject(sha256)
        found = self.find("", subject) if subject else None
        stored = self.store.attachment(sha256) if found is not None else None
        if found is None or stored is None:
            raise FhirError(404, "NOT_FOUND", "no Binary with this id")
        return stored[0], stored[1], found

    def _versions(self, resource_type: str, fhir_id: str) -> tuple[str, list[dict[str, Any]]]:
        with self.store.engine.connect() as c:
            known = self._key_of(c, fhir_id)
            if known is None or RESOURCE_TYPES.get(known[0]) != resource_type:
                raise FhirError(404, "NOT_FOUND", f"no {resource_type} with this id")
            versions = q.versions_of(c, known[1])
        if not versions:
            raise FhirError(404, "NOT_FOUND", f"no {resource_type} with this id")
        return known[1], versions

    def _key_of(self, conn: Any, fhir_id: str) -> tuple[str, str] | None:
        """:func:`engine.store.read.key_of`, remembered: an id once given always names the same key."""
        found = self._keys.get(fhir_id)
        if found is None:
            found = q.key_of(conn, fhir_id)
            if found is not None:
                if len(self._keys) > _KNOWN_IDS:
                    self._keys.clear()
                self._keys[fhir_id] = found
        return found

    def _remember(self, rows: list[tuple[str, str, str]]) -> None:
        """Record the FHIR ids a response hands out; ids this process recorded before are not written again
        (a bounded set: a citizen read twice costs one write, not two)."""
        known = self._known
        fresh = [r for r in rows if r[0] not in known]
        if not fresh:
            return
        with self.store.engine.begin() as c:
            q.remember_ids(c, fresh)
        if len(known) > _KNOWN_IDS:
            known.clear()
        known.update(r[0] for r in fresh)
