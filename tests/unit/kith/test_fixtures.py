"""Every KITH fixture (official SAREPTA samples + a synthetic Svarrapport) against its reviewed canonical JSON.

Regenerate after a deliberate mapping change with ``ENJOURNAL_UPDATE_FIXTURES=1`` and review the diff by eye.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.errors import PermanentError
from tests.conftest import SHARED_CORPUS
from tests.unit.kith.helpers import KITH, canonical, expected_path, mapped

REJECTED = {"sarepta_apprec-v1.0_npr_eksempel.xml": "KITH_NOT_CLINICAL"}
MAPPED = sorted(p for p in KITH.glob("*.xml") if p.name not in REJECTED)


@pytest.mark.parametrize("xml", MAPPED, ids=lambda p: p.stem)
def test_fixture_maps_to_expected_json(xml: Path) -> None:
    got = canonical(mapped(xml.name))
    target = expected_path(xml)
    if os.environ.get("ENJOURNAL_UPDATE_FIXTURES") == "1":
        target.write_text(json.dumps(got, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    assert got == json.loads(target.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name,code", sorted(REJECTED.items()))
def test_rejected_fixture_states_its_reason(name: str, code: str) -> None:
    with pytest.raises(PermanentError) as info:
        mapped(name)
    assert info.value.code == code


def test_every_shared_corpus_file_maps_or_is_rejected_with_a_code() -> None:
    corpus = SHARED_CORPUS / "kith"
    if not corpus.is_dir():
        pytest.skip("shared corpus not present")
    for xml in sorted(corpus.glob("*.xml")):
        try:
            result = mapped(xml.read_bytes())
        except PermanentError as exc:
            assert exc.code == REJECTED.get(xml.name), xml.name
            continue
        assert result.records and result.source_message_id, xml.name
        assert (KITH / xml.name).read_bytes() == xml.read_bytes(), f"{xml.name}: fixture copy is stale"


def test_mapping_is_deterministic() -> None:
    for xml in MAPPED:
        assert canonical(mapped(xml.name)) == canonical(mapped(xml.name))
