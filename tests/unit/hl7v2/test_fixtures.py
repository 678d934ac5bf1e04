"""Fixture pairs: each HL7 v2 file beside its expected canonical JSON, plus the shared corpus sweep.

The expected files were produced by the mapping and then checked by eye against the messages.
Regenerate after a deliberate mapping change with ``HL7V2_REGEN=1 pytest tests/unit/hl7v2`` and review
the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from engine.errors import PermanentError
from mappings.hl7v2 import map_message
from tests.unit.hl7v2.conftest import HL7_CORPUS, HL7_FIXTURES, make_ctx

#: fixtures that must be rejected, with the reason code
REJECTED = {
    "efferent_ORM-O01_v2.3_escape_sequences.hl7": "HL7_UNSUPPORTED_TYPE",
    "fhirconv_OUL-R22_v2.8_utf8.hl7": "HL7_UNSUPPORTED_TYPE",
    "nhapi_badinput_fuzz_so5.hl7": "HL7_BAD_MSH",
}
MAPPED = sorted(p.name for p in HL7_FIXTURES.glob("*.hl7") if p.name not in REJECTED)


def _canonical(raw: bytes) -> bytes:
    result = map_message(raw, make_ctx())
    return orjson.dumps(result.model_dump(mode="json"), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _expected_path(name: str) -> Path:
    return HL7_FIXTURES / (name.rsplit(".", 1)[0] + ".expected.json")


@pytest.mark.parametrize("name", MAPPED)
def test_fixture_maps_to_expected_json(name: str) -> None:
    got = _canonical((HL7_FIXTURES / name).read_bytes())
    path = _expected_path(name)
    if os.environ.get("HL7V2_REGEN") == "1":
        path.write_bytes(got)
    assert orjson.loads(got) == orjson.loads(path.read_bytes())


@pytest.mark.parametrize("name,code", sorted(REJECTED.items()))
def test_fixture_rejected_with_reason(name: str, code: str) -> None:
    with pytest.raises(PermanentError) as err:
        map_message((HL7_FIXTURES / name).read_bytes(), make_ctx())
    assert err.value.code == code


def test_mapping_is_deterministic() -> None:
    for name in MAPPED:
        raw = (HL7_FIXTURES / name).read_bytes()
        assert _canonical(raw) == _canonical(raw)


def _corpus_files() -> list[Path]:
    return sorted(p for p in HL7_CORPUS.glob("*") if p.is_file() and p.suffix != ".tsv") if HL7_CORPUS.is_dir() else []


@pytest.mark.skipif(not HL7_CORPUS.is_dir(), reason="shared HL7 v2 corpus not present")
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_shared_corpus_maps_or_is_rejected(path: Path) -> None:
    raw = path.read_bytes()
    try:
        result = map_message(raw, make_ctx())
    except PermanentError as exc:
        assert exc.code.startswith("HL7_")
        return
    assert result.records or result.links or result.warnings
    pinned = HL7_FIXTURES / path.name
    if pinned.exists():
        assert pinned.read_bytes() == raw, "fixture copy differs from the shared corpus"
