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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from engine import ids
from engine.errors import EnjournalError
from engine.model import Identifier, IdentityLink
from engine.store import schema as s
from engine.store.bulk import Bulk, pg_text_array, select_in

_BEST_ORDER = {"FNR": 0, "DNR": 1, "FHN": 2, "HNR": 3, "LOCAL": 4, "OTHER": 5}


class EdgeCache:
    """A bounded set of edges known to be stored (per store object, not global)."""

    def __init__(self, size: int = 50_000) -> None:  # ~12 MB: a bounded share of a worker's memory
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


_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema()))"


def apply_links(
    conn: sa.Connection, links: Iterable[tuple[IdentityLink, str]], cache: EdgeCache, bulk: Bulk
) -> list[tuple[str, str]]:
    """Store new edges and merge components for a whole batch; return the edges that were new.

    A fixed number of statements per batch: one look-up of the edges, one of the identifiers, bulk
    inserts, the relabelling of merged components and one conflict query (driver-level SQL: no
    statement compilation per batch). New identifiers are inserted with their final label, so only
    identifiers already stored are relabelled. Edges and identifiers looked up under the lock are known
    to be new: their insert skips the store's own look-up.
    """
    new: dict[tuple[str, str], tuple[IdentityLink, str]] = {}
    for link, envelope_id in links:
        e = _edge(link)
        if e[0] != e[1] and e not in cache and e not in new:
            new[e] = (link, envelope_id)
    if not new:
        return []
    if conn.dialect.name == "postgresql":  # one writer of the identity graph per schema at a time
        conn.exec_driver_sql(_LOCK)
    known = _existing_edges(conn, list(new))
    todo = {e: v for e, v in new.items() if e not in known}
    if not todo:
        return list(new)
    idents = {i.key: i for link, _ in todo.values() for i in (link.a, link.b)}
    comp = _components(conn, list(idents))
    merges, env_of = _merge(todo, comp)
    missing = [k for k in idents if k not in comp]
    bulk(
        conn,
        s.identifiers,
        [(k, idents[k].system, idents[k].value, idents[k].kind, merges.get(k, k)) for k in missing],
        known_new=True,
    )
    bulk(conn, s.identity_edges, [(e[0], e[1], link.reason, env) for e, (link, env) in todo.items()], known_new=True)
    if merges:
        stored = set(comp.values())  # labels of stored identifiers; a new one's label is its own key
        _relabel(conn, {gone: keep for gone, keep in merges.items() if gone in stored})
        _record_conflicts(conn, sorted(set(merges.values())), env_of, bulk)
    return list(new)


def remember(cache: EdgeCache, edges: Iterable[tuple[str, str]]) -> None:
    """Call after commit: only committed edges may be skipped later."""
    for e in edges:
        cache.add(e)


def _existing_edges(conn: sa.Connection, edges: list[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(r[0], r[1]) for r in select_in(conn, s.identity_edges, ("a_key", "b_key"), ("a_key", "b_key"), edges)}


def _components(conn: sa.Connection, keys: list[str]) -> dict[str, str]:
    """Current component of every stored identifier among ``keys``."""
    return {str(k): str(c) for k, c in select_in(conn, s.identifiers, ("id_key", "component"), ("id_key",), keys)}


def _relabel(conn: sa.Connection, merges: dict[str, str]) -> None:
    """Move every stored identifier of a merged component to the label kept (one statement on PostgreSQL)."""
    if not merges:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "UPDATE identifiers t SET component = m.keep FROM unnest(%s::text[], %s::text[]) "
            "AS m(gone, keep) WHERE t.component = m.gone",
            (pg_text_array(merges), pg_text_array(merges.values())),
        )
        return
    conn.exec_driver_sql(
        "UPDATE identifiers SET component = ? WHERE component = ?", [(k, g) for g, k in merges.items()]
    )


def _merge(
    todo: dict[tuple[str, str], tuple[IdentityLink, str]], comp: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Union-find over component labels; the label kept is the smallest (order-independent)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    env_of: dict[str, str] = {}
    for e, (_link, env) in todo.items():
        ra, rb = find(comp.get(e[0], e[0])), find(comp.get(e[1], e[1]))  # a new identifier: alone
        if ra != rb:
            keep, gone = min(ra, rb), max(ra, rb)
            parent[gone] = keep
            env_of[keep] = env
    merges = {c: find(c) for c in parent}
    return merges, {find(k): v for k, v in env_of.items()}


def _record_conflicts(conn: sa.Connection, roots: list[str], env_of: dict[str, str], bulk: Bulk) -> None:
    """Every pair of different FNRs in a merged component is a conflict for review."""
    fnrs: dict[str, list[str]] = {}
    system = "t.system = '" + ids.OID_FNR.replace("'", "''") + "'"
    for key, c in select_in(conn, s.identifiers, ("id_key", "component"), ("component",), roots, system):
        fnrs.setdefault(str(c), []).append(str(key))
    pairs = [
        (x, y, env_of.get(c, ""))
        for c, ks in fnrs.items()
        for j, x in enumerate(sorted(ks))
        for y in sorted(ks)[j + 1 :]
    ]
    bulk(conn, s.identity_conflicts, pairs)


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


#: systems whose values are national (unique across the country): a bare value is tried in these first
NATIONAL_SYSTEMS = (ids.OID_FNR, ids.OID_DNR, ids.OID_FHN)


class AmbiguousIdentifier(EnjournalError):
    """A bare value that belongs to more than one citizen (a local id of several systems): the caller
    must give the full key ``system|value``."""

    code = "IDENTIFIER_AMBIGUOUS"


def resolve(conn: sa.Connection, query: str) -> Citizen | None:
    """Find the citizen an identifier belongs to; ``query`` is an identifier value or a full key
    (``system|value``). Matching is exact: no pattern characters, no prefix. A bare value is looked
    up as a national number first; a value that several citizens have (a local id of two systems)
    raises :class:`AmbiguousIdentifier` rather than picking one."""
    comp = _component(conn, query)
    if comp is None:
        return _lonely(conn, query)
    t = s.identifiers
    rows = conn.execute(sa.select(t.c.system, t.c.value, t.c.kind).where(t.c.component == comp)).all()
    idents = tuple(sorted((Identifier(system=r[0], value=r[1], kind=r[2]) for r in rows), key=lambda i: i.key))
    keys = [i.key for i in idents if i.system == ids.OID_FNR]
    c = s.identity_conflicts
    conflicts = (
        tuple((r[0], r[1]) for r in conn.execute(sa.select(c.c.a_key, c.c.b_key).where(c.c.a_key.in_(keys))))
        if len(keys) > 1
        else ()
    )
    return Citizen(str(comp), idents, conflicts)


def _component(conn: sa.Connection, query: str) -> str | None:
    """The component of a linked identifier (exact key, or exact value: national systems first)."""
    t = s.identifiers
    if "|" in query:
        return conn.execute(sa.select(t.c.component).where(t.c.id_key == query).limit(1)).scalar()
    rows = conn.execute(sa.select(t.c.system, t.c.component).where(t.c.value == query)).all()
    national = sorted({str(c) for system, c in rows if system in NATIONAL_SYSTEMS})
    found = national or sorted({str(c) for _system, c in rows})
    if len(found) > 1:
        raise AmbiguousIdentifier(f"the value belongs to {len(found)} citizens; give it as system|value")
    return found[0] if found else None


def _lonely(conn: sa.Connection, query: str) -> Citizen | None:
    """An identifier that no link mentions: it is its own component if any record is about it."""
    keys = _subject_keys(conn, query)
    if len(keys) > 1:
        raise AmbiguousIdentifier(f"the value belongs to {len(keys)} citizens; give it as system|value")
    if not keys:
        return None
    system, _, value = keys[0].rpartition("|")
    return Citizen(keys[0], (Identifier(system=system, value=value, kind=_kind_of(system)),), ())


def _subject_keys(conn: sa.Connection, query: str) -> list[str]:
    """Subject keys of records that ``query`` names exactly (at most two). A bare value is tried as each
    national system's key first (an index look-up); only then as the value of any system, by a suffix
    match with LIKE's wildcards escaped."""
    rv = s.record_versions

    def find(cond: sa.ColumnElement[bool]) -> list[str]:
        return [str(k) for k in conn.execute(sa.select(rv.c.subject_key).where(cond).distinct().limit(2)).scalars()]

    if "|" in query:
        return find(rv.c.subject_key == query)
    return find(rv.c.subject_key.in_([f"{system}|{query}" for system in NATIONAL_SYSTEMS])) or find(
        rv.c.subject_key.endswith("|" + query, autoescape=True)
    )


def _kind_of(system: str) -> str:
    return {ids.OID_FNR: "FNR", ids.OID_DNR: "DNR", ids.OID_FHN: "FHN"}.get(
        system, "HNR" if system.startswith(ids.OID_HNR_PREFIX) else "LOCAL"
    )


def best_of(identifiers: Sequence[Identifier]) -> Identifier:
    return min(identifiers, key=lambda i: (_BEST_ORDER.get(i.kind, 9), i.key))
