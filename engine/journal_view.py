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
    #: sha256 of the attachments the records refer to that the store holds
    stored: frozenset[str] = frozenset()

    def to_json(self, with_history: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "component": self.citizen.component,
            "best_identifier": self.citizen.best.model_dump(mode="json"),
            "identifiers": [i.model_dump(mode="json") for i in self.citizen.identifiers],
            "conflicts": [list(c) for c in self.citizen.conflicts],
            "records": [_record(r, self.stored) for r in self.current],
        }
        if with_history:
            out["history"] = [_record(r, self.stored) for r in self.history]
        return out


def load_journal(store: Store, query: str) -> JournalView | None:
    """The journal of the citizen ``query`` names exactly (see :func:`engine.identity.resolve`); None when
    nobody has that identifier. Raises :class:`engine.identity.AmbiguousIdentifier` for a bare value that
    several citizens have."""
    citizen = store.citizen(query.strip())
    if citizen is None:
        return None
    rows = store.versions_for(citizen.keys)
    cur, hist = current_versions(rows)
    with_refs = (orjson.loads(r["content"]) for r in rows if '"sha256"' in r["content"])
    shas = {ref["sha256"] for content in with_refs for ref in attachment_refs(content)}
    return JournalView(citizen, cur, hist, frozenset(store.attachments_stored(shas)))


def _record(r: dict[str, Any], stored: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A record as the journal shows it; ``attachments``: its attachment references (type, size, description,
    title, sha256) and whether the store holds their bytes, when it has any."""
    out = {
        "record_key": r["record_key"],
        "kind": r["kind"],
        "status": r["status"],
        "event_time": datetime.fromtimestamp(r["event_us"] / 1e6, tz=UTC).isoformat(),
        "version": r["version_hash"],
        "envelope_id": r["envelope_id"],
        "adapter": r["adapter"],
        "content": orjson.loads(r["content"]),
    }
    refs = attachment_refs(out["content"])
    if refs:
        out["attachments"] = [{**ref, "stored": ref["sha256"] in stored} for ref in refs]
    return out


def summary_line(rec: dict[str, Any]) -> str:
    """One human line per record for the table view, its attachments after it (:func:`attachment_text`)."""
    line = _summary(rec)
    more = attachment_text(rec)
    return f"{line} {more}" if more else line


def attachment_refs(content: dict[str, Any]) -> list[dict[str, Any]]:
    """The attachment references of a record's content (``value_attachment``, ``attachments``)."""
    one = content.get("value_attachment")
    return ([one] if one else []) + list(content.get("attachments") or ())


def attachment_text(rec: dict[str, Any]) -> str:
    """A record's attachments (``rec["attachments"]``, see :func:`_record`) as ``[type, size, "description",
    sha256 ...]``, one bracket each, never the bytes (``enjournal attachment SHA256`` writes those). A
    reference the message only named, or whose bytes the store does not hold (too large), says so."""
    parts = []
    for ref in rec.get("attachments") or ():
        size = int(ref.get("size") or 0)
        where = f"sha256 {ref['sha256']}" if ref["stored"] else ("not stored" if size else "named only")
        desc = ref.get("description") or ref.get("title")
        fields = (ref.get("content_type"), _size(size), desc and f'"{desc}"', where)
        parts.append("[" + ", ".join(x for x in fields if x) + "]")
    return " ".join(parts)


def _size(n: int) -> str:
    if n == 0:
        return ""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"


def _summary(rec: dict[str, Any]) -> str:
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
