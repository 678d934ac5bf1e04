"""Practitioners and organisations in the felleskomponent1 / MsgHead shape -> :class:`engine.model.Party`.

The shape (MsgHead ``Sender``/``Receiver``/``OtherReceiver``, Dialogmelding ``RollerRelatertNotat``, PLO
``AnsvarligRapport``, ``Kontaktenhet``, Henvisning 2.0 ``KontaktpersonHelsepersonell``)::

    Organisation/{OrganisationName, Ident/{Id, TypeId/@V}, Organisation (a sub-unit, recursive),
                  HealthcareProfessional/{RoleToPatient (9034), FamilyName, GivenName, MiddleName, Ident}}

* Ids by ``TypeId/@V``: ``HPR`` -> :data:`engine.ids.OID_HPR` (leading zeros dropped), ``HER`` -> ``OID_HER``,
  ``ENH`` -> ``OID_ENH``, ``RSH`` -> ``OID_RESH``, ``FNR``/``DNR`` -> their OIDs; any other type (``LOK``,
  ``LAV`` ...) is local to the sender: ``urn:enjournal:local:<sender scope>:<type>``.
* An organisation with a sub-unit is one organisation party: the most specific unit is ``name``/``ids``,
  the units above it, joined ``"Hospital, Department"``, are ``organization``/``organization_ids``.
* A practitioner names the unit they act for in ``organization`` (the most specific one) and its ids.
* A practitioner whose ``RoleToPatient`` is 6 (Fastlege) is also named in the role ``gp``.

Parties are memoised by their values: the same sender and receiver recur in every message.
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
    "FNR": ids.OID_FNR,
    "DNR": ids.OID_DNR,
}
FASTLEGE = "6"  # RoleToPatient (9034) of the citizen's regular GP


def party_ids(node: Node | None, scope: str) -> tuple[PartyId, ...]:
    """The ``Ident`` children of an organisation or practitioner as PartyIds (see the module docstring)."""
    out: list[PartyId] = []
    for ident in c.findall(node, "Ident"):
        value = c.text(ident, "Id")
        if value:
            out.append(party_id((c.attr(ident, "TypeId") or "ID").upper(), value, scope))
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=4096)
def party_id(kind: str, value: str, scope: str) -> PartyId:
    """One id by its KITH type (8116 / 9051): a national OID, else local to the sender."""
    system = _SYSTEMS.get(kind)
    if kind == "HPR":
        value = value.lstrip("0") or value
    return PartyId(system=system or f"{ids.OID_LOCAL_PREFIX}{scope}:{kind}", value=value)


def organisation(org: Node | None, role: str, scope: str) -> tuple[Party, ...]:
    """An Organisation (with its sub-units) as one organisation party, and each practitioner in it."""
    units: list[tuple[str | None, tuple[PartyId, ...]]] = []
    hcps: list[tuple[Node, int]] = []
    node = org
    while node is not None:
        units.append((c.text(node, "OrganisationName"), party_ids(node, scope)))
        hcps += [(h, len(units)) for h in c.findall(node, "HealthcareProfessional")]
        node = c.find(node, "Organisation")
    if not units:
        return ()
    out: list[Party] = []
    name, unit_ids = units[-1]
    parent = c.join(*(u[0] for u in units[:-1]))
    parent_ids = tuple(i for u in units[:-1] for i in u[1])
    if name or unit_ids:
        out.append(_party(role, "organization", name, unit_ids, parent, parent_ids))
    for hcp, depth in hcps:
        unit_name = c.join(*(u[0] for u in units[:depth]))
        out += professional(hcp, role, scope, unit_name, units[depth - 1][1])
    return tuple(out)


def unit(org: Node | None, scope: str) -> tuple[str | None, tuple[PartyId, ...]]:
    """What a practitioner acting for ``org`` names: ``"Organisation, sub-unit"`` and the sub-unit's ids."""
    names: list[str | None] = []
    unit_ids: tuple[PartyId, ...] = ()
    while org is not None:
        names.append(c.text(org, "OrganisationName"))
        unit_ids = party_ids(org, scope) or unit_ids
        org = c.find(org, "Organisation")
    return c.join(*names), unit_ids


def professional(
    hcp: Node | None,
    role: str,
    scope: str,
    org_name: str | None = None,
    org_ids: tuple[PartyId, ...] = (),
) -> tuple[Party, ...]:
    """A HealthcareProfessional as a practitioner party in ``role`` (and as ``gp`` when it is the Fastlege)."""
    if hcp is None:
        return ()
    name = name_of(hcp)
    hcp_ids = party_ids(hcp, scope)
    if not name and not hcp_ids:
        return ()
    first = _party(role, "practitioner", name, hcp_ids, org_name, org_ids)
    if role != "gp" and c.attr(hcp, "RoleToPatient") == FASTLEGE:
        return first, _party("gp", "practitioner", name, hcp_ids, org_name, org_ids)
    return (first,)


def name_of(hcp: Node | None) -> str | None:
    """``"Given Middle Family"`` of a HealthcareProfessional."""
    return c.join(c.text(hcp, "GivenName"), c.text(hcp, "MiddleName"), c.text(hcp, "FamilyName"), sep=" ")


@lru_cache(maxsize=4096)
def _party(
    role: str,
    kind: str,
    name: str | None,
    party_ids_: tuple[PartyId, ...],
    organization: str | None,
    organization_ids: tuple[PartyId, ...],
) -> Party:
    return Party(
        role=role,
        kind=kind,  # type: ignore[arg-type]
        name=name,
        ids=party_ids_,
        organization=organization,
        organization_ids=organization_ids,
    )


def merge(*groups: tuple[Party, ...] | None) -> tuple[Party, ...] | None:
    """The parties of several groups in order, each once; None when there are none (the model's default)."""
    found = [p for g in groups if g for p in g]
    if not found:
        return None
    return tuple(dict.fromkeys(found)) if len(found) > 1 else tuple(found)
