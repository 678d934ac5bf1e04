"""One KITH family table (mappings.kith.families) for the KITH file adapter and the mapping.

The rule accepts everything either accepted before: the adapter's exact namespaces (PLO by a pattern) and
the mapping's namespace markers with its root elements. Every corpus fixture gets the same family from the
adapter's check and the mapping's dispatch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from adapters.kith_file.inspection import family, inspect
from mappings import kith
from mappings.kith.families import APPREC, FAMILIES, family_of, mapped_family
from mappings.kith.xml import parse_xml, unwrap
from tests.conftest import FIXTURES

CORPUS = sorted((FIXTURES / "kith").glob("*.xml")) + sorted((FIXTURES / "kith_adapter").glob("*.xml"))
K = "http://www.kith.no/xmlstds/"
#: what the adapter accepted before, exactly (namespace -> family)
ADAPTER_BEFORE = {
    **{K + f"labsvar/{d}": "svarrapport" for d in ("2005-03-14", "2008-12-01", "2012-02-15")},
    **{K + f"rekvisisjon/{d}": "rekvisisjon" for d in ("2008-12-01", "2012-02-15")},
    K + "epikrise": "epikrise",
    **{K + f"epikrise/{d}": "epikrise" for d in ("2006-09-23", "2012-02-15")},
    **{K + f"henvisning/{d}": "henvisning" for d in ("2005-07-08", "2012-02-15")},
    "http://ehelse.no/xmlstds/henvisning/2017-11-30": "henvisning",
    **{K + f"dialog/{d}": "dialogmelding" for d in ("2006-10-11", "2013-01-23")},
    **{K + f"apprec/{d}": "apprec" for d in ("2004-11-21", "2012-02-15")},
    K + "po/Pasientlogistikk/2012-04-01": "plo",
    "http://ehelse.no/xmlstds/po/Sammenfatning/2016-05-30": "plo",
}
#: what the mapping accepted before: namespace marker, root element (None: any) -> family
MAPPING_BEFORE = {
    ("/labsvar/", "Message"): "svarrapport",
    ("/epikrise", "Message"): "epikrise",
    ("/henvisning/", None): "henvisning",
    ("/dialog/", "Dialogmelding"): "dialogmelding",
    ("/po/", None): "plo",
    ("/rekvisisjon/", "Message"): "rekvisisjon",
}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_adapter_and_mapping_agree_on_every_corpus_file(path: Path) -> None:
    raw = path.read_bytes()
    ins = inspect(raw, max_bytes=64 * 1024 * 1024)
    assert ins.reject_code is None, ins.reject
    for payload in unwrap(parse_xml(raw)).payloads:
        name = family(payload)
        assert name is not None
        if name == APPREC.name:
            assert ins.is_receipt
            with pytest.raises(Exception, match="receipt"):
                kith.family(payload)
        else:
            assert kith.family(payload).__name__ == f"mappings.kith.{name}"
            if ins.shape == "standalone":
                assert ins.family == name


@pytest.mark.parametrize(("namespace", "name"), sorted(ADAPTER_BEFORE.items()))
def test_every_namespace_the_adapter_knew_keeps_its_family(namespace: str, name: str) -> None:
    found = family_of(namespace)
    assert found is not None and found.name == name


@pytest.mark.parametrize(("marker", "root", "name"), [(m, r, n) for (m, r), n in MAPPING_BEFORE.items()])
def test_every_namespace_the_mapping_took_is_taken_by_both(marker: str, root: str | None, name: str) -> None:
    ns, root_name = f"urn:example{marker}x", root or "Anything"
    mapped = mapped_family(ns, root_name)
    assert mapped is not None and mapped.name == name
    assert family(etree.Element(f"{{{ns}}}{root_name}")) == name


def test_the_root_decides_for_the_mapping_only() -> None:
    ns = K + "labsvar/2012-02-15"
    assert mapped_family(ns, "Other") is None  # no mapping for it: KITH_UNSUPPORTED_TYPE when mapped
    found = family_of(ns, "Other")
    assert found is not None and found.name == "svarrapport"  # the adapter takes it (and answers it)


def test_a_receipt_by_namespace_or_root() -> None:
    assert family_of(K + "apprec/2012-02-15", "Anything") is APPREC
    assert family_of("urn:example:other", "AppRec") is APPREC
    assert mapped_family("urn:example:other", "AppRec") is APPREC
    assert family_of("urn:example:other", "Message") is None
    assert family_of(None) is None


def test_one_table() -> None:
    names = [f.name for f in FAMILIES]
    assert len(set(names)) == len(names) and [f for f in FAMILIES if not f.clinical] == [APPREC]
