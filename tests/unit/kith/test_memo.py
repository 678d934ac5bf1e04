"""What the KITH mapping memoises stays per-value: nothing of one message leaks into the next, caches are bounded."""

from __future__ import annotations

from lxml import etree

from mappings.kith import node
from mappings.kith import xml as kxml
from tests.unit.kith.helpers import KITH, canonical, mapped, records

SYNTH = (KITH / "synthetic_svarrapport_v1.4.xml").read_text(encoding="utf-8")


def test_same_patient_twice_keeps_each_messages_own_facts() -> None:
    first = mapped(SYNTH.encode())
    renamed = mapped(SYNTH.replace("Testesen, Kari", "Annensen, Per").encode())
    (p1,), (p2,) = records(first, "person"), records(renamed, "person")
    assert (p1.family_name, p1.given_name) == ("Testesen", "Kari")
    assert (p2.family_name, p2.given_name) == ("Annensen", "Per")
    assert p1.identifiers == p2.identifiers and p1.key == p2.key and first.links == renamed.links


def test_mapping_again_gives_the_same_canonical_result() -> None:
    raw = (KITH / "sarepta_svarrapport-v1.4_mikrobiologi_dyrkning_ny.xml").read_bytes()
    assert canonical(mapped(raw)) == canonical(mapped(raw))


def test_local_name_cache_is_bounded_and_names_past_the_bound_still_resolve(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fresh: dict[object, str] = {}  # a fresh cache, and the shared one is left as it was
    monkeypatch.setattr(kxml, "TAG_NAMES", fresh)
    bound = kxml._MAX_NAMES
    ns = "urn:test:memo"
    root = etree.Element(f"{{{ns}}}Root")
    for i in range(bound + 50):
        etree.SubElement(root, f"{{{ns}}}N{i}").text = str(i)
    last = f"N{bound + 49}"
    index = node.Node(root).index()
    assert len(fresh) <= bound
    assert index[last].text == str(bound + 49)
    assert node.Node(root).find_el(last) is index[last]
