"""Practitioners and organisations of the KITH v1.x messages (Svarrapport, Rekvisisjon, Epikrise, Henvisning 1.x).

The v1.x shape (kith.xsd ``HCP``)::

    HCP/{Inst/{Name, Id, TypeId, Dept/{Name, Id, TypeId}, HCPerson/{Name, Id, TypeId}},
         HCProf/{Type, Name, Id, TypeId}}

wrapped in ``ServProvider``, ``Requester``, ``CopyDest``, ``RelServProv``/``RelServProvider`` and
``Patient/ResponsibleHcp`` (the last three with a ``Relation`` code saying the role).

* ``Inst`` -> an organisation :class:`Party` named ``Inst/Name`` with ``Inst``'s ids; with a ``Dept`` the party
  is the department (its name and ids) and ``organization``/``organization_ids`` name the institution it
  belongs to.
* ``Inst/HCPerson`` and ``HCProf`` -> a practitioner :class:`Party`; ``organization`` is the department or
  institution they acted for.
* Ids by ``TypeId/@V`` (``S`` is advisory, senders get it wrong): ``HPR`` -> :data:`engine.ids.OID_HPR`
  (leading zeros dropped: the register's numbers have none), ``HER`` -> ``OID_HER``, ``ENH`` -> ``OID_ENH``,
  ``RSH`` -> ``OID_RESH``; any other type (``LAV``, ``LOK`` ...) is local to the institution that issued it:
  ``urn:enjournal:local:<scope>:<type>``, ``<scope>`` being the enclosing ``Inst``'s ``<TypeId>:<Id>`` (or the
  caller's scope).
* Roles: the caller's, or by ``Relation/@V``: ``REK`` requester, ``AHP``/``ARP``/``ANS`` responsible, ``GOD``
  approver, ``SCR`` screener, ``KOP`` copy, ``FLE`` gp, ``HHE`` requester.
"""

from __future__ import annotations

from functools import lru_cache

from engine import ids
from engine.model import Party, PartyId
from mappings.kith import common as c
from mappings.kith.node import Node

_SYSTEMS = {
    "HPR": ids.OID_HPR,
    "HER": ids.OID_HER,
    "ENH": ids.OID_ENH,
    "RSH": ids.OID_RESH,
    "RESH": ids.OID_RESH,
}
#: ``Relation/@V`` (Volven 8254 and the samples' codes) -> :data:`engine.model.PARTY_ROLES`
RELATION_ROLES = {
    "REK": "requester",
    "HHE": "requester",
    "AHP": "responsible",
    "ARP": "responsible",
    "ANS": "responsible",
    "GOD": "approver",
    "SCR": "screener",
    "KOP": "copy",
    "FLE": "gp",
}


def party_id(type_id: str | None, value: str | None, scope: str | None = None) -> PartyId | None:
    """The :class:`PartyId` of an ``Id`` + ``TypeId/@V`` pair; None without a value."""
    if not value:
        return None
    kind = (type_id or "ID").strip().upper()
    return _party_id(kind, value.strip(), scope)


@lru_cache(maxsize=2048)
def _party_id(kind: str, value: str, scope: str | None) -> PartyId:
    """Memoised: the same labs and GPs recur in every message, and a PartyId is immutable."""
    system = _SYSTEMS.get(kind)
    if system is None:
        return PartyId(system=f"{ids.OID_LOCAL_PREFIX}{scope or 'unknown'}:{kind}", value=value)
    if kind == "HPR":
        value = value.lstrip("0") or value
    return PartyId(system=system, value=value)


def _ids(node: Node | None, scope: str | None) -> tuple[PartyId, ...]:
    found = party_id(c.attr(node, "TypeId"), c.text(node, "Id"), scope)
    return () if found is None else (found,)


def scope_of(inst: Node | None) -> str | None:
    """``<TypeId>:<Id>`` of an ``Inst`` (``HER:59``), the scope of the local ids it issues."""
    value = c.text(inst, "Id")
    return f"{(c.attr(inst, 'TypeId') or 'ID').upper()}:{value}" if value else None


def role_of(wrapper: Node | None, default: str) -> str:
    """The role a ``Relation`` code in ``wrapper`` gives, else ``default``."""
    relation = c.attr(wrapper, "Relation")
    return RELATION_ROLES.get(relation.upper(), default) if relation else default


def parties(wrapper: Node | None, role: str, scope: str | None = None) -> tuple[Party, ...]:
    """The parties of a wrapper element holding one ``HCP`` (``ServProvider``, ``Requester``, ``RelServProv``,
    ``ResponsibleHcp`` ...) in ``role`` (a ``Relation`` code in the wrapper overrides it): the organisation
    first, then the practitioner. Empty when the wrapper names nobody."""
    if wrapper is None:
        return ()
    role = role_of(wrapper, role)
    return from_hcp(wrapper.find("HCP"), role, scope)


def from_hcp(hcp: Node | None, role: str, scope: str | None = None) -> tuple[Party, ...]:
    """The parties of one ``HCP`` element in ``role``."""
    if hcp is None:
        return ()
    out: list[Party] = []
    inst = hcp.find("Inst")
    org_name: str | None = None
    org_ids: tuple[PartyId, ...] = ()
    if inst is not None:
        scope = scope_of(inst) or scope
        inst_name, inst_ids = c.text(inst, "Name"), _ids(inst, scope)
        dept = inst.find("Dept")
        dept_name, dept_ids = c.text(dept, "Name"), _ids(dept, scope)
        if dept_name or dept_ids:
            org_name, org_ids = dept_name or inst_name, dept_ids or inst_ids
            out.append(_org(role, org_name, org_ids, inst_name, inst_ids if dept_ids else ()))
        elif inst_name or inst_ids:
            org_name, org_ids = inst_name, inst_ids
            out.append(_org(role, inst_name, inst_ids, None, ()))
        person = inst.find("HCPerson")
        if person is not None:
            out += _person(person, role, scope, org_name, org_ids)
    prof = hcp.find("HCProf")
    if prof is not None:
        out += _person(prof, role, scope, org_name, org_ids)
    return tuple(out)


def _org(
    role: str, name: str | None, party_ids: tuple[PartyId, ...], parent: str | None, parent_ids: tuple[PartyId, ...]
) -> Party:
    return Party(
        role=role,
        kind="organization",
        name=name,
        ids=party_ids,
        organization=parent if parent != name else None,
        organization_ids=parent_ids,
    )


def _person(
    node: Node, role: str, scope: str | None, org: str | None, org_ids: tuple[PartyId, ...]
) -> tuple[Party, ...]:
    name, person_ids = c.text(node, "Name"), _ids(node, scope)
    if not name and not person_ids:
        return ()
    return (
        Party(role=role, kind="practitioner", name=name, ids=person_ids, organization=org, organization_ids=org_ids),
    )


def first_org(found: tuple[Party, ...]) -> Party | None:
    """The first organisation among ``found`` (the lab of a ``ServProvider``)."""
    return next((p for p in found if p.kind == "organization"), None)
