"""Practitioners and organisations in the felleskomponent1 / MsgHead shape -> :class:`engine.model.Party`.

The shape (MsgHead ``Sender``/``Receiver``/``OtherReceiver``, Dialogmelding ``RollerRelatertNotat``, PLO
``AnsvarligRapport``, ``Kontaktenhet``, Henvisning 2.0 ``KontaktpersonHelsepersonell``)::

    Organisation/{OrganisationName, Ident/{Id, TypeId/@V}, Organisation (a sub-unit, recursive),
                  HealthcareProfessional/{RoleToPatient (9034), FamilyName, GivenName, MiddleName, Ident}}

* Ids by ``TypeId/@V`` as in the v1.x shape (:func:`mappings.kith.hcp.party_id`): ``HPR`` -> ``OID_HPR``
  (leading zeros dropped), ``HER``, ``ENH``, ``RSH`` -> their OIDs; any other type (``LOK``, ``LAV`` ...) is
  local to the sender: ``urn:enjournal:local:<sender scope>:<type>``.
* An organisation with a sub-unit is one organisation party, as :mod:`mappings.kith.hcp` makes an ``Inst``
  with a ``Dept``: the most specific unit is ``name``/``ids``, the units above it (joined ``", "``) are
  ``organization``/``organization_ids``.
* A practitioner names the unit they act for (the most specific one) in ``organization`` and its ids.
* A practitioner whose ``RoleToPatient`` is 6 (Fastlege) is also named in the role ``gp``.

Parties are memoised by their values: the same sender and receiver recur in every message.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from lxml import etree

from engine.model import Coding, Party, PartyId
from mappings.kith import common as c
from mappings.kith import hcp
from mappings.kith.node import Node
from mappings.kith.xml import tag_name

FASTLEGE = "6"  # RoleToPatient (9034) of the citizen's regular GP
_NAME_PARTS = ("GivenName", "MiddleName", "FamilyName")
_Unit = tuple[str | None, tuple[PartyId, ...]]


def party_ids(node: Node | None, scope: str) -> tuple[PartyId, ...]:
    """The ``Ident`` children of an organisation or practitioner as PartyIds (ids as :func:`hcp.party_id`)."""
    return () if node is None else _ids([ch for ch in node.el if tag_name(ch.tag) == "Ident"], scope)


def _ids(idents: list[etree._Element], scope: str) -> tuple[PartyId, ...]:
    out: list[PartyId] = []
    for ident in idents:
        value = kind = None
        for child in ident:  # raw children: parties are read from every MsgHead, a Node per element costs
            name = tag_name(child.tag)
            if name == "Id":
                value = c.el_text(child)
            elif name == "TypeId":
                kind = c.el_attr(child)
        found = hcp.party_id(kind, value, scope)
        if found is not None:
            out.append(found)
    return tuple(dict.fromkeys(out)) if len(out) > 1 else tuple(out)


def _scan_unit(el: etree._Element, scope: str) -> tuple[_Unit, etree._Element | None, list[etree._Element]]:
    """One pass over an Organisation's children: (name, ids), its sub-unit and its professionals."""
    name, idents, sub, professionals = None, [], None, []
    for child in el:
        tag = tag_name(child.tag)
        if tag == "OrganisationName":
            name = c.el_text(child)
        elif tag == "Ident":
            idents.append(child)
        elif tag == "Organisation" and sub is None:
            sub = child
        elif tag == "HealthcareProfessional":
            professionals.append(child)
    return (name, _ids(idents, scope)), sub, professionals


def organisation(org: Node | None, role: str, scope: str) -> tuple[Party, ...]:
    """An Organisation (with its sub-units) as one organisation party, and each practitioner in it."""
    units: list[_Unit] = []
    professionals: list[tuple[etree._Element, int]] = []
    el = last = org.el if org is not None else None
    while el is not None:
        last = el
        found, el, people = _scan_unit(el, scope)
        units.append(found)
        professionals += [(p, len(units)) for p in people]
    if not units or last is None:
        return ()
    out: list[Party] = []
    name, unit_ids = units[-1]
    parent = c.join(*(u[0] for u in units[:-1]))
    parent_ids = tuple(i for u in units[:-1] for i in u[1])
    if name or unit_ids:
        phones, address = _contact(last)
        out.append(_party(role, "organization", name, unit_ids, parent, parent_ids, None, None, phones, address))
    for person, depth in professionals:
        out += _professional(person, role, scope, *_nearest(units[:depth]))
    return tuple(out)


def _contact(el: etree._Element) -> tuple[tuple[str, ...] | None, str | None]:
    """The ``TeleCom/TeleAddress`` values and the first ``Address`` (``street, postal code city``) of a unit."""
    phones: list[str] = []
    address = None
    for child in el:
        tag = tag_name(child.tag)
        if tag == "TeleCom":
            phones += [v for t in child if tag_name(t.tag) == "TeleAddress" and (v := c.el_attr(t))]
        elif tag == "Address" and address is None:
            parts = {tag_name(p.tag): c.el_text(p) for p in child}
            place = c.join(parts.get("PostalCode"), parts.get("City"), sep=" ")
            address = c.join(parts.get("StreetAdr"), place, sep=", ")
    return tuple(phones) or None, address


def unit(org: Node | None, scope: str) -> _Unit:
    """What a practitioner acting for ``org`` names: its most specific unit's name and ids."""
    units: list[_Unit] = []
    el = org.el if org is not None else None
    while el is not None:
        found, el, _ = _scan_unit(el, scope)
        units.append(found)
    return _nearest(units)


def _nearest(units: list[_Unit]) -> _Unit:
    """The name and ids of the most specific unit that has them."""
    name = next((n for n, _ in reversed(units) if n), None)
    return name, next((i for _, i in reversed(units) if i), ())


def professional(
    node: Node | None,
    role: str,
    scope: str,
    org_name: str | None = None,
    org_ids: tuple[PartyId, ...] = (),
) -> tuple[Party, ...]:
    """A HealthcareProfessional as a practitioner party in ``role`` (and as ``gp`` when it is the Fastlege)."""
    return () if node is None else _professional(node.el, role, scope, org_name, org_ids)


def _professional(
    el: etree._Element, role: str, scope: str, org_name: str | None, org_ids: tuple[PartyId, ...]
) -> tuple[Party, ...]:
    names: dict[str, str | None] = {}
    idents: list[etree._Element] = []
    relation = qualification = None
    phones: list[str] = []
    for child in el:
        tag = tag_name(child.tag)
        if tag in _NAME_PARTS:
            names[tag] = c.el_text(child)
        elif tag == "Ident":
            idents.append(child)
        elif tag == "RoleToPatient":
            relation = c.coding_of(child)
        elif tag == "TypeHealthcareProfessional":
            qualification = c.coding_of(child)
        elif tag == "TeleCom":
            phones += [v for t in child if tag_name(t.tag) == "TeleAddress" and (v := c.el_attr(t))]
    name = c.join(*(names.get(n) for n in _NAME_PARTS), sep=" ")
    hcp_ids = _ids(idents, scope)
    if not name and not hcp_ids:
        return ()
    more = (qualification, relation, tuple(phones) or None)
    first = _party(role, "practitioner", name, hcp_ids, org_name, org_ids, *more)
    if role != "gp" and relation is not None and relation.code == FASTLEGE:
        return first, _party("gp", "practitioner", name, hcp_ids, org_name, org_ids, *more)
    return (first,)


def next_of_kin(el: Node) -> str | None:
    """A ``ParorendeForesatt`` as ``<relation>: <name>; nærmeste pårørende; <phones>; <address>; <remark>``."""
    ref = c.find(el, "Referanseperson")
    phones = [c.attr(t, "TeleAddress") for t in c.findall(ref, "TeleCom")]
    adr = c.find(ref, "Address")
    place = c.join(c.text(adr, "PostalCode"), c.text(adr, "City"), sep=" ")
    closest = (c.text(el, "NarmesteParorende") or "").lower() == "true"
    who = c.join(c.attr(el, "Slektskap", "DN"), name_of(ref), sep=": ")
    return c.join(
        who,
        "nærmeste pårørende" if closest else None,
        *phones,
        c.join(c.text(adr, "StreetAdr"), place, sep=", "),
        c.text(el, "Merknad"),
        sep="; ",
    )


def patient_facts(el: Node) -> str | None:
    """A ``TilleggsopplysningPasient`` as ``<marital status>; bor alene; språk: <language>``."""
    alone = (c.text(el, "BorAlene") or "").lower() == "true"
    language = c.attr(el, "Sprak", "DN") or c.attr(el, "Sprak")
    return c.join(
        c.attr(el, "SivilStatus", "DN"),
        "bor alene" if alone else None,
        f"språk: {language}" if language else None,
        sep="; ",
    )


def name_of(node: Node | None) -> str | None:
    """``"Given Middle Family"`` of a HealthcareProfessional."""
    return c.join(*(c.text(node, n) for n in _NAME_PARTS), sep=" ")


@lru_cache(maxsize=4096)
def _party(
    role: str,
    kind: Literal["practitioner", "organization"],
    name: str | None,
    party_ids_: tuple[PartyId, ...],
    organization: str | None,
    organization_ids: tuple[PartyId, ...],
    qualification: Coding | None = None,
    relation: Coding | None = None,
    telecom: tuple[str, ...] | None = None,
    address: str | None = None,
) -> Party:
    return Party(
        role=role,
        kind=kind,
        name=name,
        ids=party_ids_,
        organization=organization,
        organization_ids=organization_ids,
        qualification=qualification,
        relation=relation,
        telecom=telecom,
        address=address,
    )


def report_parties(payload: Node, scope: str) -> tuple[Party, ...]:
    """The poKomponent parties of a payload: each ``AnsvarForRapport/AnsvarligRapport`` in the role its
    ``TypeRelasjon`` (8254) gives (``HHE`` requester ...; else ``responsible``), and each
    ``KontaktpersonHelsepersonell/Kontaktperson`` as ``gp`` when it is the Fastlege, else ``other``."""
    found: list[Party] = []
    for resp in c.findall(payload, "AnsvarForRapport"):
        relation = (c.attr(resp, "TypeRelasjon") or "").upper()
        role = hcp.RELATION_ROLES.get(relation, "responsible")
        found += professional(c.find(resp, "AnsvarligRapport"), role, scope)
    for contact in c.findall(payload, "KontaktpersonHelsepersonell/Kontaktperson"):
        role = "gp" if c.attr(contact, "RoleToPatient") == FASTLEGE else "other"
        found += professional(contact, role, scope)
    return tuple(found)


def merge(*groups: tuple[Party, ...] | None) -> tuple[Party, ...] | None:
    """The parties of several groups in order, each once; None when there are none (the model's default)."""
    found = [p for g in groups if g for p in g]
    if not found:
        return None
    return tuple(dict.fromkeys(found)) if len(found) > 1 else tuple(found)
