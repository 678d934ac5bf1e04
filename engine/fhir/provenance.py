"""Where a record version came from, as a FHIR Provenance: the envelope, the source message, the adapter.

One Provenance per stored version (its id a digest of the record key and version), targeting the record at
that version. ``recorded`` is when the engine received the envelope; the adapter is the assembling agent
and the sending system, when known, the source; the entities name the archived envelope (replayable) and
the sender's message id. Paths of source elements the mapping did not represent, when the caller computed
them (:mod:`engine.coverage`), are listed in an extension: paths only, never values.
"""

from __future__ import annotations

import hashlib
from typing import Any

from engine.fhir.refs import record_ref

__all__ = ["UNMAPPED_EXTENSION", "provenance", "provenance_id"]

UNMAPPED_EXTENSION = "urn:enjournal:fhir:StructureDefinition/unmapped-source-path"
_AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def provenance_id(record_key: str, version: str) -> str:
    """The id of the Provenance of one record version."""
    return hashlib.sha256(f"provenance|{record_key}|{version}".encode()).hexdigest()[:32]


def provenance(row: dict[str, Any], envelope: dict[str, Any] | None, unmapped: tuple[str, ...] = ()) -> dict[str, Any]:
    """The Provenance of the stored version ``row`` (``envelope``: its archive metadata, if archived)."""
    target = record_ref(row["kind"], row["record_key"])
    recorded = (envelope or {}).get("received_at")
    agents: list[dict[str, Any]] = [
        {
            "type": {"coding": [{"system": _AGENT_TYPE, "code": "assembler"}]},
            "who": {"display": f"enjournal adapter {row['adapter']}"},
        }
    ]
    source = (envelope or {}).get("source_system")
    if source:
        agents.append({"type": {"coding": [{"system": _AGENT_TYPE, "code": "author"}]}, "who": {"display": source}})
    entities: list[dict[str, Any]] = [
        {
            "role": "source",
            "what": {"identifier": {"system": "urn:enjournal:envelope", "value": row["envelope_id"]}},
        }
    ]
    if row.get("source_message_id"):
        entities.append(
            {
                "role": "source",
                "what": {
                    "identifier": {"system": "urn:enjournal:source-message-id", "value": row["source_message_id"]}
                },
            }
        )
    res: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": provenance_id(row["record_key"], row["version_hash"]),
        "target": [{"reference": f"{target}/_history/{row['version_hash']}"}],
        "recorded": recorded or "1970-01-01T00:00:00+00:00",
        "agent": agents,
        "entity": entities,
    }
    if unmapped:
        res["extension"] = [{"url": UNMAPPED_EXTENSION, "valueString": path} for path in unmapped]
    return res
