"""KITH documents whose bytes do not fit their declared charset: read with the one that fits, flagged."""

from __future__ import annotations

import pytest

from adapters.kith_file.inspection import inspect
from mappings.kith.xml import parse_document
from tests.conftest import FIXTURES
from tests.unit.kith.helpers import mapped, records

TEMPLATE = (FIXTURES / "kith" / "synthetic_svarrapport_v1.4.xml").read_text(encoding="utf-8")
NAME = "Ødegård, Åse"


def document(declared: str, name: str = NAME) -> str:
    text = TEMPLATE.replace("Testesen, Kari", name)
    return text.replace('encoding="UTF-8"', f'encoding="{declared}"', 1)


def person_names(raw: bytes) -> list[tuple[str | None, str | None]]:
    return [(p.family_name, p.given_name) for p in records(mapped(raw), "person")]


def test_utf8_bytes_declared_latin1_are_read_as_utf8_and_flagged() -> None:
    raw = document("ISO-8859-1").encode("utf-8")
    ins = inspect(raw, max_bytes=1 << 20)
    assert ins.reject_code is None and ins.charset_repaired == "iso-8859-1->utf-8"
    assert person_names(raw) == [("Ødegård", "Åse")]  # not "Ã\x98degÃ¥rd"


def test_cp1252_bytes_declared_latin1_are_not_control_characters() -> None:
    raw = document("ISO-8859-1", "Ødegård–Hansen, Åse").encode("cp1252")
    parsed = parse_document(raw)
    assert parsed.charset_repaired == "iso-8859-1->windows-1252"
    assert person_names(raw) == [("Ødegård–Hansen", "Åse")]


def test_cp1252_bytes_declared_utf8_are_flagged() -> None:
    raw = document("UTF-8", "Ødegård–Hansen, Åse").encode("cp1252")
    assert parse_document(raw).charset_repaired == "utf-8->windows-1252"
    assert person_names(raw) == [("Ødegård–Hansen", "Åse")]


@pytest.mark.parametrize("declared,codec", [("ISO-8859-1", "iso-8859-1"), ("UTF-8", "utf-8")])
def test_bytes_that_fit_are_not_flagged(declared: str, codec: str) -> None:
    raw = document(declared).encode(codec)
    assert inspect(raw, max_bytes=1 << 20).charset_repaired is None
    assert person_names(raw) == [("Ødegård", "Åse")]
