"""The audit log: append a record per read, verify the hash chain, query by citizen or actor.

Each :meth:`AuditLog.append` is its own short transaction, serialised so the chain stays linear (PostgreSQL:
a transaction-level advisory lock; SQLite: ``BEGIN IMMEDIATE``, the database's write lock). The code never
updates or deletes a row; the migration adds triggers that refuse both. :meth:`AuditLog.verify` walks the
chain in id order and names the first row whose hash, link or id does not follow.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from engine.audit.schema import GENESIS, audit_log
from engine.errors import StoreUnavailable

if TYPE_CHECKING:
    from engine.auth.policy import Decision
    from engine.auth.principal import Principal
    from engine.store.journal import Store

_LOCK_ID = 7_243_021  # the advisory lock of audit appends (PostgreSQL)
_T = audit_log


def _now() -> datetime:
    return datetime.now(UTC)


def at_text(when: datetime) -> str:
    """A time as the audit log stores it: ISO 8601 in UTC with microseconds (sorts as text)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


class AuditEntry(BaseModel):
    """What one read (or refused read) was: who, why, about whom, what, and the answer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: str
    role: str
    outcome: Literal["allowed", "denied"]
    reason_code: str
    purpose: str | None = None
    citizen_key: str | None = None  # the citizen's component key (or the identifier key asked for)
    resource_type: str | None = None
    resource_ids: tuple[str, ...] = ()
    query: str | None = None  # the request path and query string, or the CLI command
    client: str | None = None
    break_glass: str | None = None
    at: datetime = Field(default_factory=_now)

    @classmethod
    def of(
        cls,
        principal: Principal,
        decision: Decision,
        *,
        resource_type: str | None,
        citizen_key: str | None = None,
        resource_ids: Iterable[str] = (),
        query: str | None = None,
        break_glass: str | None = None,
    ) -> AuditEntry:
        """The entry for a policy decision about ``principal``'s request."""
        return cls(
            actor=principal.actor,
            role=principal.role,
            outcome="allowed" if decision.allowed else "denied",
            reason_code=decision.reason_code,
            purpose=principal.purpose,
            citizen_key=citizen_key,
            resource_type=resource_type,
            resource_ids=tuple(resource_ids),
            query=query,
            client=principal.client,
            break_glass=(break_glass or principal.break_glass) if decision.break_glass else None,
        )

    @classmethod
    def unauthenticated(cls, reason_code: str, *, client: str | None, query: str | None) -> AuditEntry:
        """The entry for a request refused before its caller was known (no token, a bad token)."""
        return cls(
            actor="anonymous", role="none", outcome="denied", reason_code=reason_code, client=client, query=query
        )


class AuditRecord(AuditEntry):
    """A stored entry: its id in the chain and the hashes that link it."""

    id: int
    prev_hash: str
    hash: str


class _Pending:
    """An entry waiting to be written, and what its caller waits for."""

    __slots__ = ("entry", "done", "lead", "id", "error")

    def __init__(self, entry: AuditEntry) -> None:
        self.entry = entry
        self.done = threading.Event()
        self.lead = False  # woken to write the next group, not because its own entry is written
        self.id: int | None = None
        self.error: StoreUnavailable | None = None


@dataclass(frozen=True, slots=True)
class Broken:
    """The first link of the chain that does not hold: the row's id and why (``hash``: the row was changed;
    ``link``: the row before it was changed or removed; ``id``: a row is missing before it)."""

    id: int
    why: str


def _row(entry: AuditEntry, row_id: int, prev_hash: str) -> dict[str, Any]:
    return {
        "id": row_id,
        "at": at_text(entry.at),
        "actor": entry.actor,
        "role": entry.role,
        "purpose": entry.purpose,
        "citizen_key": entry.citizen_key,
        "resource_type": entry.resource_type,
        "resource_ids": orjson.dumps(list(entry.resource_ids)).decode(),
        "query": entry.query,
        "outcome": entry.outcome,
        "reason_code": entry.reason_code,
        "client": entry.client,
        "break_glass": entry.break_glass,
        "prev_hash": prev_hash,
    }


def row_hash(row: dict[str, Any]) -> str:
    """sha256 over the row's canonical JSON (every column but ``hash``, keys sorted) and ``prev_hash``."""
    body = {str(k): v for k, v in row.items() if k != "hash"}  # str(): SQLAlchemy's keys are a str subclass
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical + str(row["prev_hash"]).encode()).hexdigest()


class AuditLog:
    """The audit log of a store (its table is made by the store's migrations)."""

    def __init__(self, store: Store, *, group_max: int = 256) -> None:
        self.engine = store.engine
        self._pg = self.engine.dialect.name == "postgresql"
        self._group_max = group_max
        self._mutex = threading.Lock()
        self._queue: list[_Pending] = []
        self._writing = False

    def append(self, entry: AuditEntry) -> int:
        """Write ``entry`` as the next link of the chain and return its row id once it is committed. Raises
        StoreUnavailable when it cannot be written (the read it records must then not be answered).

        Appends of concurrent threads are committed together (group commit): the first caller writes the
        entries waiting at that moment in one transaction while later ones queue, and hands the next group
        to one of them. One commit (and one lock) per group instead of per entry keeps the serialised
        chain from capping the read side's throughput."""
        mine = _Pending(entry)
        with self._mutex:
            self._queue.append(mine)
            lead = not self._writing
            self._writing = True
        if not lead:
            mine.done.wait()
        if lead or mine.lead:
            self._write_group()
        if mine.error is not None:
            raise mine.error
        if mine.id is None:  # the writer of its group failed in an unexpected way (and raised that itself)
            raise StoreUnavailable("audit log write failed")
        return mine.id

    def append_many(self, entries: Sequence[AuditEntry]) -> list[int]:
        """Write ``entries`` in one transaction, in order; their row ids."""
        pending = [_Pending(e) for e in entries]
        self._write(pending)
        for p in pending:
            if p.error is not None:
                raise p.error
        return [p.id for p in pending if p.id is not None]

    def _write_group(self) -> None:
        """Write the waiting entries (this caller's among them), wake their callers, pass the lead on."""
        with self._mutex:
            group, self._queue = self._queue[: self._group_max], self._queue[self._group_max :]
        try:
            self._write(group)
        finally:
            with self._mutex:
                if self._queue:
                    self._queue[0].lead = True
                    self._queue[0].done.set()
                else:
                    self._writing = False
            for p in group:
                p.done.set()

    def _write(self, group: Sequence[_Pending]) -> None:
        """One transaction: lock the chain's end, link each entry after the last row, insert them."""
        try:
            with self.engine.begin() as conn:
                if self._pg:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
                else:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                last = conn.execute(sa.select(_T.c.id, _T.c.hash).order_by(_T.c.id.desc()).limit(1)).first()
                row_id, prev = (int(last[0]), str(last[1])) if last else (0, GENESIS)
                rows = []
                for p in group:
                    row_id += 1
                    row = _row(p.entry, row_id, prev)
                    row["hash"] = prev = row_hash(row)
                    rows.append(row)
                conn.execute(_T.insert(), rows)
        except sa.exc.SQLAlchemyError as exc:
            error = StoreUnavailable(f"audit log write failed ({type(exc).__name__})")
            for p in group:
                p.error = error
            return
        for p, row in zip(group, rows, strict=True):
            p.id = int(row["id"])

    def check(self, batch: int = 1000) -> Broken | None:
        """The first broken link of the chain, or None when every row follows from the one before."""
        prev_id, prev_hash = 0, GENESIS
        for row in self._rows(batch):
            if row["id"] != prev_id + 1:
                return Broken(int(row["id"]), "id")
            if row["prev_hash"] != prev_hash:
                return Broken(int(row["id"]), "link")
            if row_hash(row) != row["hash"]:
                return Broken(int(row["id"]), "hash")
            prev_id, prev_hash = int(row["id"]), str(row["hash"])
        return None

    def verify(self) -> int | None:
        """The id of the first broken row, or None when the chain holds."""
        broken = self.check()
        return broken.id if broken else None

    def _rows(self, batch: int) -> Iterator[dict[str, Any]]:
        """Every row in id order, read in pages by id (no long-held cursor)."""
        after = 0
        while True:
            with self.engine.connect() as conn:
                rows = [
                    dict(r._mapping)
                    for r in conn.execute(sa.select(_T).where(_T.c.id > after).order_by(_T.c.id).limit(batch))
                ]
            yield from rows
            if len(rows) < batch:
                return
            after = int(rows[-1]["id"])

    def head(self) -> tuple[int, str]:
        """The last row's id and hash (``(0, GENESIS)`` when empty): note it elsewhere to detect later
        removal of rows at the end, which the chain alone cannot show."""
        with self.engine.connect() as conn:
            last = conn.execute(sa.select(_T.c.id, _T.c.hash).order_by(_T.c.id.desc()).limit(1)).first()
        return (int(last[0]), str(last[1])) if last else (0, GENESIS)

    def query(
        self,
        *,
        citizen: str | Iterable[str] | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: int | None = None,
        newest_first: bool = False,
        limit: int = 1000,
    ) -> list[AuditRecord]:
        """Records about ``citizen`` (one key or several: see :func:`citizen_keys`) and/or by ``actor``, at
        or after ``since`` and before ``until``, at most ``limit``, oldest first (or newest first); ``after``
        pages on: only ids above it (below it when newest first)."""
        order = _T.c.id.desc() if newest_first else _T.c.id
        q = sa.select(_T).order_by(order).limit(limit)
        if after is not None:
            q = q.where(_T.c.id < after if newest_first else _T.c.id > after)
        if citizen is not None:
            keys = [citizen] if isinstance(citizen, str) else list(citizen)
            q = q.where(_T.c.citizen_key.in_(keys))
        if actor is not None:
            q = q.where(_T.c.actor == actor)
        if since is not None:
            q = q.where(_T.c.at >= at_text(since))
        if until is not None:
            q = q.where(_T.c.at < at_text(until))
        with self.engine.connect() as conn:
            return [_record(dict(r._mapping)) for r in conn.execute(q)]


def _record(row: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        **{**row, "resource_ids": tuple(orjson.loads(row["resource_ids"])), "at": datetime.fromisoformat(row["at"])}
    )


def citizen_keys(store: Store, query: str) -> list[str]:
    """The keys a citizen's audit records are under: every identifier key of the citizen ``query`` names
    (its component key is one of them, also after identities merged); ``query`` itself when no citizen has
    it (records of refused or not-found reads). Raises AmbiguousIdentifier like a journal look-up."""
    found = store.citizen(query.strip())
    return sorted({found.component, *found.keys}) if found is not None else [query.strip()]
