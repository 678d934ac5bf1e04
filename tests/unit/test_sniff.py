"""engine.sniff: ``enjournal map FILE`` picks the mapping by content: HL7 after comment lines, XML after a
BOM or whitespace in UTF-8, UTF-16 LE/BE and UTF-32."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.sniff import sniff_mapping
from tests.conftest import FIXTURES, REPO

HL7 = (FIXTURES / "hl7v2" / "no_ORU-R01_synthetic_cbc_ranges_to.hl7").read_bytes()
XML = (FIXTURES / "kith" / "sarepta_dialogmelding-v1.0_avvik.xml").read_bytes()
XML_TEXT = XML.decode("utf-8")


def _xml(codec: str, bom: bytes) -> bytes:
    return bom + XML_TEXT.replace('encoding="UTF-8"', f'encoding="{codec.upper()[:6]}"').encode(codec)


HL7_CASES = {
    "plain": HL7,
    "bom": codecs.BOM_UTF8 + HL7,
    "slash-comments": b"// batch from LABSYS\r\n// 1 message\r\n\r\n" + HL7,
    "block-comment-lines": b"/* export 2026-03-16 */\n/* synthetic */\n" + HL7,
    "block-comment-spanning-lines": b"/* export\n   synthetic\n*/\n\n" + HL7,
    "comments-then-fhs": b"/* file */\r\nFHS|^~\\&|LAB\rBHS|^~\\&|LAB\r" + HL7 + b"BTS|1\rFTS|1\r",
    "mllp-framed": b"\x0b" + HL7 + b"\x1c\r",
}
XML_CASES = {
    "utf-8": XML,
    "utf-8-bom": codecs.BOM_UTF8 + XML,
    "whitespace": b"\r\n  \t" + XML,
    "utf-16-le-bom": _xml("utf-16-le", codecs.BOM_UTF16_LE),
    "utf-16-be-bom": _xml("utf-16-be", codecs.BOM_UTF16_BE),
    "utf-16-le-no-bom": _xml("utf-16-le", b""),
    "utf-16-be-no-bom": _xml("utf-16-be", b""),
    "utf-32-le-bom": _xml("utf-32-le", codecs.BOM_UTF32_LE),
    "utf-16-bom-whitespace": codecs.BOM_UTF16_LE + "\n  ".encode("utf-16-le") + XML_TEXT.encode("utf-16-le"),
}


@pytest.mark.parametrize("raw", HL7_CASES.values(), ids=HL7_CASES.keys())
def test_hl7_is_found_after_comments_bom_and_framing(raw: bytes) -> None:
    assert sniff_mapping(raw) == "hl7v2"


@pytest.mark.parametrize("raw", XML_CASES.values(), ids=XML_CASES.keys())
def test_xml_is_found_in_any_declared_encoding(raw: bytes) -> None:
    assert sniff_mapping(raw) == "kith"


@pytest.mark.parametrize(
    "raw", [b"fnr;dato\n13916900443;2026-01-01\n", b"", b"/* a comment and then */ csv;text\n", b"// MSH later|\n"]
)
def test_anything_else_is_csv(raw: bytes) -> None:
    assert sniff_mapping(raw) == "csv"


def _map(tmp_path: Path, raw: bytes) -> dict[str, object]:
    f = tmp_path / "in.dat"
    f.write_bytes(raw)
    # a subprocess: the CLI configures logging for its process, which must not leak into other tests
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "map", "--json", str(f)],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    out: dict[str, object] = json.loads(result.stdout)
    return out


@pytest.mark.parametrize("name", ["slash-comments", "block-comment-lines", "block-comment-spanning-lines"])
def test_enjournal_map_maps_hl7_after_comment_lines(tmp_path: Path, name: str) -> None:
    doc = _map(tmp_path, HL7_CASES[name])
    assert doc["status"] == "mapped" and doc["message_type"] == "ORU^R01"


@pytest.mark.parametrize("name", ["utf-16-le-bom", "utf-16-be-bom"])
def test_enjournal_map_maps_utf16_xml(tmp_path: Path, name: str) -> None:
    doc = _map(tmp_path, XML_CASES[name])
    assert doc["status"] == "mapped" and doc["message_type"] == "DIALOG_AVVIK"


def test_enjournal_map_gives_xml_after_whitespace_to_the_xml_mapping(tmp_path: Path) -> None:
    # whitespace before the XML declaration is not well-formed XML: the XML mapping says so, not CSV
    doc = _map(tmp_path, XML_CASES["whitespace"])
    assert str(doc.get("code", "")).startswith("KITH_") or doc["status"] == "mapped"
