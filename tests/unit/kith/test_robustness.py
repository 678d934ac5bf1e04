"""Damaged KITH documents never crash: each maps (perhaps with warnings) or raises a PermanentError with a code."""

from __future__ import annotations

import random
import re

import pytest
from lxml import etree

from engine.errors import PermanentError
from tests.unit.kith.helpers import KITH, mapped

FILES = sorted(KITH.glob("*.xml"))
CODE = re.compile(r"^[A-Z][A-Z0-9_]+$")


def _mutations(raw: bytes, rng: random.Random) -> list[bytes]:
    out = [raw[: rng.randrange(len(raw))], raw.replace(b'V="', b'V="x', 3), raw.replace(b"<Id>", b"<Id> ", 2)]
    root = etree.fromstring(raw)
    elements = list(root.iter(etree.Element))[1:]
    for _ in range(8):
        tree = etree.fromstring(raw)
        victims = rng.sample(list(tree.iter(etree.Element))[1:], k=min(len(elements) - 1, rng.randint(1, 6)))
        for el in victims:
            if el.getparent() is not None:
                el.getparent().remove(el)
        out.append(etree.tostring(tree))
        tree = etree.fromstring(raw)
        for el in rng.sample(list(tree.iter(etree.Element)), k=min(len(elements), 5)):
            for name in list(el.attrib):
                el.set(name, rng.choice(["", " ", "9999-99-99", "C", "NaN", "<", "13116900217"]))
            el.text = rng.choice([None, "", "  ", "2017-13-45T25:61:00", "abc", el.text])
        out.append(etree.tostring(tree))
    return out


@pytest.mark.parametrize("xml", FILES, ids=lambda p: p.stem)
def test_damaged_documents_map_or_fail_with_a_code(xml) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(xml.name)
    for raw in _mutations(xml.read_bytes(), rng):
        try:
            mapped(raw)
        except PermanentError as exc:
            assert CODE.match(exc.code), exc.code
            assert exc.code != "KITH_MAPPING_FAILED", f"{xml.name}: {exc}"
