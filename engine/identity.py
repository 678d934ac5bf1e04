"""Identity resolution: a citizen is a connected component of identifiers.

Every :class:`engine.model.IdentityLink` is an edge. ``identifiers.component`` holds the smallest
identifier key of the component, so the labelling is a function of the edge set (union is
commutative): any order of assertions gives the same components. A component holding two different
valid FNRs is a conflict: every such pair is recorded in ``identity_conflicts`` for review, and the
journal shows it; nothing is silently chosen.

Writers serialise identity updates (PostgreSQL: a transaction-level advisory lock; SQLite has one
writer anyway). Edges already known are skipped without taking the lock.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import sqlalchemy as sa

from engine import ids
from engine.model import Identifier, IdentityLink
from engine.store import schema as s

_LOCK_ID = 7_243_002
_BEST_ORDER = {"FNR": 0, "DNR": 1, "FHN": 2, "HNR": 3, "LOCAL": 4, "OTHER": 5}


class EdgeCache:
    """A bounded set of edges known to be stored (per store object, not global)."""

    def __init__(self, size: int = 200_000) -> None:
        self._d: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._size = size

    def __contains__(self, edge: tuple[str, str]) -> bool:
        return edge in self._d

    def add(self, edge: tuple[str, str]) -> None:
        self._d[edge] = None
        if len(self._d) > self._size:
            self._d.popitem(last=False)


def _edge(link: IdentityLink) -> tuple[str, str]:
    a, b = link.a.key, link.b.key
    return (a, b) if a <= b else (b, a)


def apply_links(conn: sa.Connection, links: Iterable[tuple[IdentityLink, str]], cache: EdgeCache,
                insert: Callable[[sa.Table], Any]) -> list[tuple[str, str]]:
    """Store new edges and merge components; return the edges that were new."""
    new: dict[tuple[str, str], tuple[IdentityLink, str]] = {}
    for link, envelope_id in links:
        e = _edge(link)
        if e[0] != e[1] and e not in cache and e not in new:
            new[e] = (link, envelope_id)
    if not new:
        return []
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
    known = _existing_edges(conn, list(new))
    added: list[tuple[str, str]] = []
    for e, (link, envelope_id) in new.items():
        if e in known:
            continue
        conn.execute(insert(s.identity_edges).on_conflict_do_nothing(),
                     [{"a_key": e[0], "b_key": e[1], "reason": link.reason, "envelope_id": envelope_id}])
        _union(conn, link.a, link.b, envelope_id, insert)
        added.append(e)
    return added


def remember(cache: EdgeCache, edges: Iterable[tuple[str, str]]) -> None:
    """Call after commit: only committed edges may be skipped later."""
    for e in edges:
        cache.add(e)


def _existing_edges(conn: sa.Connection, edges: list[tuple[str, str]]) -> set[tuple[str, str]]:
    t = s.identity_edges
    found: set[tuple[str, str]] = set()
    for i in range(0, len(edges), 400):
        chunk = edges[i:i + 400]
        cond = sa.or_(*[sa.and_(t.c.a_key == a, t.c.b_key == b) for a, b in chunk])
        found.update((r[0], r[1]) for r in conn.execute(sa.select(t.c.a_key, t.c.b_key).where(cond)))
    return found


def _component_of(conn: sa.Connection, ident: Identifier, insert: Callable[[sa.Table], Any]) -> str:
    t = s.identifiers
    comp = conn.execute(sa.select(t.c.component).where(t.c.id_key == ident.key)).scalar()
    if comp is None:
        conn.execute(insert(t).on_conflict_do_nothing(), [{
            "id_key": ident.key, "system": ident.system, "value": ident.value,
            "kind": ident.kind, "component": ident.key}])
        comp = ident.key
    return str(comp)


def _union(conn: sa.Connection, a: Identifier, b: Identifier, envelope_id: str,
           insert: Callable[[sa.Table], Any]) -> None:
    ca, cb = _component_of(conn, a, insert), _component_of(conn, b, insert)
    if ca == cb:
        return
    keep, gone = min(ca, cb), max(ca, cb)
    t = s.identifiers
    conn.execute(t.update().where(t.c.component == gone).values(component=keep))
    fnrs = sorted(r[0] for r in conn.execute(
        sa.select(t.c.id_key).where(t.c.component == keep, t.c.system == ids.OID_FNR)))
    pairs = [{"a_key": x, "b_key": y, "envelope_id": envelope_id}
             for i, x in enumerate(fnrs) for y in fnrs[i + 1:]]
    if pairs:
        conn.execute(insert(s.identity_conflicts).on_conflict_do_nothing(), pairs)


@dataclass(frozen=True)
class Citizen:
    """A resolved citizen: its component, identifiers, best identifier and any conflicts."""

    component: str
    identifiers: tuple[Identifier, ...]
    conflicts: tuple[tuple[str, str], ...]

    @property
    def best(self) -> Identifier:
        return min(self.identifiers, key=lambda i: (_BEST_ORDER.get(i.kind, 9), i.key))

    @property
    def keys(self) -> list[str]:
        return [i.key for i in self.identifiers]


def resolve(conn: sa.Connection, query: str) -> Citizen | None:
    """Find the citizen an identifier belongs to; ``query`` is an identifier value or a full key."""
    t = s.identifiers
    cond = t.c.id_key == query if "|" in query else t.c.value == query
    comp = conn.execute(sa.select(t.c.component).where(cond).limit(1)).scalar()
    if comp is None:
        return _lonely(conn, query)
    rows = conn.execute(sa.select(t.c.system, t.c.value, t.c.kind).where(t.c.component == comp)).all()
    idents = tuple(sorted((Identifier(system=r[0], value=r[1], kind=r[2]) for r in rows), key=lambda i: i.key))
    keys = [i.key for i in idents if i.system == ids.OID_FNR]
    c = s.identity_conflicts
    conflicts = tuple((r[0], r[1]) for r in conn.execute(
        sa.select(c.c.a_key, c.c.b_key).where(c.c.a_key.in_(keys)))) if len(keys) > 1 else ()
    return Citizen(str(comp), idents, conflicts)


def _lonely(conn: sa.Connection, query: str) -> Citizen | None:
    """An identifier that no link mentions: it is its own component if any record is about it."""
    rv = s.record_versions
    cond = rv.c.subject_key == query if "|" in query else rv.c.subject_key.like(f"%|{query}")
    key = conn.execute(sa.select(rv.c.subject_key).where(cond).limit(1)).scalar()
    if key is None:
        return None
    system, _, value = str(key).rpartition("|")
    return Citizen(str(key), (Identifier(system=system, value=value, kind=_kind_of(system)),), ())


def _kind_of(system: str) -> str:
    return {ids.OID_FNR: "FNR", ids.OID_DNR: "DNR", ids.OID_FHN: "FHN"}.get(
        system, "HNR" if system.startswith(ids.OID_HNR_PREFIX) else "LOCAL")


def best_of(identifiers: Sequence[Identifier]) -> Identifier:
    return min(identifiers, key=lambda i: (_BEST_ORDER.get(i.kind, 9), i.key))
