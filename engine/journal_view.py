"""A citizen's unified journal, built from the store: identity component + current record versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from engine.identity import Citizen
from engine.store import Store
from engine.store.journal import current_versions


@dataclass(frozen=True)
class JournalView:
    citizen: Citizen
    current: list[dict[str, Any]]
    history: list[dict[str, Any]]

    def to_json(self, with_history: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "component": self.citizen.component,
            "best_identifier": self.citizen.best.model_dump(mode="json"),
            "identifiers": [i.model_dump(mode="json") for i in self.citizen.identifiers],
            "conflicts": [list(c) for c in self.citizen.conflicts],
            "records": [_record(r) for r in self.current],
        }
        if with_history:
            out["history"] = [_record(r) for r in self.history]
        return out


def load_journal(store: Store, query: str) -> JournalView | None:
    """The journal of the citizen ``query`` names exactly (see :func:`engine.identity.resolve`); None when
    nobody has that identifier. Raises :class:`engine.identity.AmbiguousIdentifier` for a bare value that
    several citizens have."""
    citizen = store.citizen(query.strip())
    if citizen is None:
        return None
    cur, hist = current_versions(store.versions_for(citizen.keys))
    return JournalView(citizen, cur, hist)


def _record(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "record_key": r["record_key"],
        "kind": r["kind"],
        "status": r["status"],
        "event_time": datetime.fromtimestamp(r["event_us"] / 1e6, tz=UTC).isoformat(),
        "version": r["version_hash"],
        "envelope_id": r["envelope_id"],
        "adapter": r["adapter"],
        "content": orjson.loads(r["content"]),
    }


def summary_line(rec: dict[str, Any]) -> str:
    """One human line per record for the table view."""
    c = rec["content"]
    kind = rec["kind"]
    if kind == "person":
        name = " ".join(x for x in (c.get("given_name"), c.get("family_name")) if x)
        return f"{name or '(no name)'} born {c.get('birth_date') or '?'} {c.get('sex') or ''}".strip()
    if kind == "observation":
        code = c.get("code") or {}
        val = c.get("value_num") if c.get("value_num") is not None else (c.get("value_text") or "")
        comp = c.get("comparator") or ""
        flag = f" [{c['abnormal_flag']}]" if c.get("abnormal_flag") else ""
        return f"{code.get('display') or code.get('code')}: {comp}{val} {c.get('unit') or ''}{flag}".strip()
    if kind in ("condition", "medication"):
        code = c.get("code") or {}
        return f"{code.get('code', '')} {code.get('display') or c.get('name') or ''} {c.get('role') or ''}".strip()
    if kind == "document":
        dt = c.get("doc_type") or {}
        return f"{dt.get('display') or dt.get('code')}: {c.get('title') or ''}".strip()
    if kind == "care_event":
        ev = c.get("event_code") or {}
        return f"{ev.get('display') or ev.get('code')} {c.get('facility') or ''}".strip()
    if kind == "encounter":
        span = f"{c.get('start') or ''} - {c.get('end') or ''}"
        return f"{c.get('encounter_class') or 'encounter'} {span} {c.get('facility') or ''}"
    if kind == "referral":
        return f"{c.get('reason') or ''} -> {c.get('recipient') or ''}".strip()
    return str(rec["record_key"])
