"""KITH v1.x ``HCP`` -> Party / PartyId: organisations, departments, practitioners, id systems, roles."""

from __future__ import annotations

from lxml import etree

from engine import ids
from engine.model import PartyId
from mappings.kith import hcp
from mappings.kith.node import Node

NS = "http://www.kith.no/xmlstds/labsvar/2012-02-15"


def node(xml: str) -> Node:
    return Node(etree.fromstring(f'<W xmlns="{NS}">{xml}</W>'.encode()))


SERV_PROVIDER = """<HCP><Inst><Name>ST OLAVS HOSPITAL HF</Name><Id>59</Id><TypeId V="HER" DN="HER-id"/>
<Dept><Name>Patologi</Name><Id>91818</Id><TypeId V="HER"/></Dept></Inst></HCP>"""

REQUESTER = """<HCP><Inst><Name>Kattskinnet legesenter</Name><Id>56704</Id><TypeId V="HER"/>
<HCPerson><Name>Rita Lin</Name><Id>0009144900</Id><TypeId V="HPR" S="2.16.578.1.12.4.1.1.9051"/></HCPerson>
</Inst></HCP>"""


def test_department_is_the_organisation_within_its_institution() -> None:
    (lab,) = hcp.parties(node(SERV_PROVIDER), "performer")
    assert (lab.role, lab.kind, lab.name, lab.organization) == (
        "performer",
        "organization",
        "Patologi",
        "ST OLAVS HOSPITAL HF",
    )
    assert lab.ids == (PartyId(system=ids.OID_HER, value="91818"),)
    assert lab.organization_ids == (PartyId(system=ids.OID_HER, value="59"),)


def test_gp_office_and_gp_with_hpr_without_leading_zeros() -> None:
    office, gp = hcp.parties(node(REQUESTER), "requester")
    assert (office.kind, office.name, office.ids) == (
        "organization",
        "Kattskinnet legesenter",
        (PartyId(system=ids.OID_HER, value="56704"),),
    )
    assert (gp.kind, gp.name, gp.organization) == ("practitioner", "Rita Lin", "Kattskinnet legesenter")
    assert gp.ids == (PartyId(system=ids.OID_HPR, value="9144900"),)
    assert gp.organization_ids == office.ids


def test_relation_code_gives_the_role_and_hcprof_a_practitioner() -> None:
    wrapper = node(
        '<Relation V="AHP" DN="Ansvarlig helsepersonell"/><HCP><HCProf><Type V="LE"/><Name>August September</Name>'
        '<Id>9144897</Id><TypeId V="HPR"/></HCProf></HCP>'
    )
    (doc,) = hcp.parties(wrapper, "other")
    assert (doc.role, doc.kind, doc.name, doc.organization) == ("responsible", "practitioner", "August September", None)


def test_other_id_types_are_local_to_the_issuing_institution() -> None:
    wrapper = node(
        '<HCP><Inst><Name>Lab</Name><Id>59</Id><TypeId V="HER"/><Dept><Name>Mikro</Name><Id>K12</Id>'
        '<TypeId V="LAV"/></Dept></Inst></HCP>'
    )
    (lab,) = hcp.parties(wrapper, "performer")
    assert lab.ids == (PartyId(system=ids.OID_LOCAL_PREFIX + "HER:59:LAV", value="K12"),)
    assert hcp.party_id("ENH", "974749025") == PartyId(system=ids.OID_ENH, value="974749025")
    assert hcp.party_id("RSH", "4001031") == PartyId(system=ids.OID_RESH, value="4001031")
    assert hcp.party_id("HER", None) is None


def test_absent_or_empty_wrapper_names_nobody() -> None:
    assert hcp.parties(None, "performer") == ()
    assert hcp.parties(node("<HCP><Inst/></HCP>"), "performer") == ()
