"""Coverage (engine.coverage, mappings/*/coverage.py, ``enjournal map --coverage``, ``bench.coverage``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine import coverage as cov
from engine.coverage import Declarations, matches, measure, of_envelope
from engine.errors import PermanentError, UnsupportedMessage
from engine.ids import synthetic_fnr
from engine.model import MapContext, MappingResult
from mappings.csv_decl import coverage as csv_cov
from mappings.hl7v2 import coverage as hl7_cov
from mappings.kith import coverage as kith_cov
from tests import fixture_pairs
from tests.conftest import REPO

CTX = MapContext(envelope_id="env-cov", adapter="test", received_at=datetime(2026, 1, 1, tzinfo=UTC))
FNR = synthetic_fnr(13, 11, 1969, 444) or ""
ORU = (
    "MSH|^~\\&|LABSYS|SYKEHUSET|ENJOURNAL|KOMMUNE|20260316091500||ORU^R01^ORU_R01|CTRL-1|P|2.5\r"
    f"PID|1||{FNR}^^^&2.16.578.1.12.4.1.4.1&ISO^NNNOR~778899^^^SYKEHUSET^PI||Nordvik^Solveig||19691113|F\r"
    "OBR|1|REK-1|LAB-1|PANEL^Blodprover^L|||20260316070000|||||||||||||||20260316090000|||F\r"
    "OBX|1|NM|NPU02319^Hemoglobin\\T\\B^NLK||13,5|g/dL|11.7-15.3|N|||F\r"
    "OBX|2|ST|NPU99999^Merknad^NLK||Hemolytisk pr\\E\\ove|||||||F\r"
).encode("latin-1")
FLOORS = Path(__file__).with_name("coverage_floors.json")


def leaves_of(module: Any, raw: bytes, ctx: MapContext = CTX) -> list[tuple[str, str]]:
    return list(module.leaves(raw, ctx))


# -- patterns -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("PID-5", "PID-5.2", True),
        ("PID-5", "PID-50.1", False),
        ("PID-5.1", "PID-5.1.2", True),
        ("PID-5.1", "PID-5.10", False),
        ("FHS", "FHS-3.1", True),
        ("MsgHead/MsgInfo/*", "MsgHead/MsgInfo/Sender/Organisation/@V", True),
        ("MsgHead/MsgInfo/*", "MsgHead/MsgInfoX/@V", False),
        ("*/Patient/Sex/@V", "Message/ServReq/Patient/Sex/@V", True),
        ("*/Patient/Sex/@V", "Message/ServReq/Patient/Sex/@DN", False),
        ("Message/Type/@V", "Message/Type/@V", True),
        ("fødselsnummer", "fødselsnummer", True),
    ],
)
def test_patterns(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


# -- leaves per format ----------------------------------------------------------------------------------


def test_hl7_leaves_are_components_without_repetition_or_position() -> None:
    found = leaves_of(hl7_cov, ORU)
    paths = [p for p, _ in found]
    assert ("MSH-1", "|") in found and ("MSH-2", "^~\\&") in found
    assert ("PID-5.2", "Solveig") in found and ("PID-8.1", "F") in found
    assert ("PID-3.4.2", "2.16.578.1.12.4.1.4.1") in found  # sub-components of a component that has them
    assert paths.count("PID-3.1") == 2  # both repetitions, one path
    assert paths.count("OBX-3.1") == 2  # both OBX segments, one path
    assert ("OBX-3.2", "Hemoglobin&B") in found  # escape sequences decoded
    assert all(v.strip() for _, v in found)


def test_hl7_framing_segments_are_leaves() -> None:
    batch = b"BHS|^~\\&|LAB|SENDER\r" + ORU + b"BTS|1\r"
    paths = {p for p, _ in leaves_of(hl7_cov, batch)}
    assert {"BHS-1", "BHS-3.1", "BTS-1.1"} <= paths


KITH = b"""<?xml version="1.0" encoding="UTF-8"?>
<MsgHead xmlns="http://www.kith.no/xmlstds/msghead/2006-05-24"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="x y">
  <MsgInfo><Type V="SVAR_LAB" DN="Svar"/><MsgId>abc</MsgId></MsgInfo>
  <Document><RefDoc><MsgType V="XML"/><Content>
    <Message xmlns="http://www.kith.no/xmlstds/labsvar/2012-02-15">
      <ServReport><ResultItem><Analysed V="2024-03-01"/><Comment>  </Comment></ResultItem>
      <ResultItem><Analysed V="2024-03-02"/><Comment>Hemolytisk</Comment></ResultItem></ServReport>
    </Message>
  </Content></RefDoc></Document>
</MsgHead>"""


def test_kith_leaves_are_texts_and_attributes_by_local_name() -> None:
    found = leaves_of(kith_cov, KITH)
    assert ("MsgHead/MsgInfo/Type/@V", "SVAR_LAB") in found
    assert ("MsgHead/MsgInfo/MsgId", "abc") in found
    assert ("MsgHead/Document/RefDoc/MsgType/@V", "XML") in found
    # a payload starts a path of its own; repeated elements share one path; blank text is no leaf
    assert [p for p, _ in found].count("Message/ServReport/ResultItem/Analysed/@V") == 2
    assert ("Message/ServReport/ResultItem/Comment", "Hemolytisk") in found
    assert not any("schemaLocation" in p for p, _ in found)


CSV_SPEC: dict[str, Any] = {
    "kind": "care_event",
    "key": ["id"],
    "subject": {"national": "fnr", "scope": "test"},
    "event_time": {"column": "dato", "formats": ["dd.mm.yyyy"]},
    "fields": {"event_code": "tjeneste"},
}


def test_csv_leaves_are_cells_by_column_and_spec_columns_are_mapped() -> None:
    ctx = CTX.model_copy(update={"options": CSV_SPEC})
    raw = f"id;fnr;dato;tjeneste;merknad\nA1;{FNR};05.01.2026;HJSP;\n".encode()
    found = leaves_of(csv_cov, raw, ctx)
    assert [p for p, _ in found] == ["id", "fnr", "dato", "tjeneste"]  # the empty cell is no leaf
    decl = csv_cov.declarations(ctx)
    assert decl.mapped_pattern("dato") and decl.mapped_pattern("merknad") is None


# -- represented, ignored, unmapped ---------------------------------------------------------------------


def _stub_family(monkeypatch: pytest.MonkeyPatch, leaves: list[tuple[str, str]], decl: Declarations) -> None:
    stub = SimpleNamespace(leaves=lambda _raw, _ctx: iter(leaves), declarations=lambda _ctx: decl)
    monkeypatch.setattr(cov, "family", lambda _mapping: stub)


def _result(*records: Any) -> MappingResult:
    return MappingResult(records=records)


@pytest.fixture
def mapped_oru() -> MappingResult:
    from mappings.hl7v2 import map_message

    return map_message(ORU, CTX)


def test_declared_ignored_path_counts_as_ignored_with_its_reason(mapped_oru: MappingResult) -> None:
    c = measure(ORU, CTX, "hl7v2", mapped_oru)
    ignored = {i.path: i for i in c.ignored}
    assert ignored["MSH-5.1"].reason == hl7_cov.IGNORED["MSH-5"] and ignored["MSH-5.1"].count == 1
    assert c.leaves == c.represented + c.ignored_leaves + c.unmapped_leaves
    assert c.share == round(c.represented / (c.leaves - c.ignored_leaves), 4)


def test_transformed_value_counts_only_when_declared(
    monkeypatch: pytest.MonkeyPatch, mapped_oru: MappingResult
) -> None:
    leaves = [("OBR-25.1", "CORR")]  # a status code the result holds as its enum, not as written
    _stub_family(monkeypatch, leaves, Declarations())
    assert measure(b"", CTX, "hl7v2", mapped_oru).unmapped[0].path == "OBR-25.1"
    _stub_family(monkeypatch, leaves, Declarations(mapped={"OBR-25": "result status"}))
    assert measure(b"", CTX, "hl7v2", mapped_oru).represented == 1


def test_times_count_in_their_iso_form(monkeypatch: pytest.MonkeyPatch, mapped_oru: MappingResult) -> None:
    leaves = [
        ("OBR-7.1", "20260316070000"),  # HL7 DTM: the result writes 2026-03-16T07:00:00...
        ("OBR-7.1", "202603160700+0100"),  # minutes and an offset
        ("CSV", "16.03.2026 07:00"),  # Norwegian date and time
        ("OBR-8.1", "20260316071500"),  # a time the result does not hold
        ("PID-7.1", "19691313"),  # not a date (month 13)
    ]
    _stub_family(monkeypatch, leaves, Declarations())
    c = measure(b"", CTX, "hl7v2", mapped_oru)
    assert c.represented == 3 and [p.path for p in c.unmapped] == ["OBR-8.1", "PID-7.1"]


def test_value_matching_normalises_but_not_trivially(
    monkeypatch: pytest.MonkeyPatch, mapped_oru: MappingResult
) -> None:
    leaves = [
        ("OBX-5.1", "13,5"),  # decimal comma: value_num 13.5
        ("OBX-5.1", "Hemolytisk pr\\ove"),  # escape decoded by the leaf reader: as the result holds it
        ("OBX-8.1", "N"),  # one character: only through a declaration
        ("ZZZ-1.1", "1"),  # a 0/1 token matches anywhere: never by value
        ("ZZZ-2.1", "316"),  # a number must be whole, not a piece of another
    ]
    _stub_family(monkeypatch, leaves, Declarations())
    c = measure(b"", CTX, "hl7v2", mapped_oru)
    assert c.represented == 2 and {p.path for p in c.unmapped} == {"OBX-8.1", "ZZZ-1.1", "ZZZ-2.1"}
    _stub_family(monkeypatch, leaves, Declarations(copied={"OBX-8": "abnormal flags"}))
    assert measure(b"", CTX, "hl7v2", mapped_oru).represented == 3


def test_kith_status_codes_are_mapped_and_schema_version_ignored() -> None:
    raw = (REPO / "tests/fixtures/kith/sarepta_svarrapport-v1.4_biokjemi_ny.xml").read_bytes()
    c = of_envelope(raw, CTX, "kith")
    unmapped = {p.path for p in c.unmapped}
    assert "Message/ServReport/Patient/ResultItem/StatusInvestigation/@V" not in unmapped
    assert "Message/ServReport/Status/@V" not in unmapped
    assert {i.path: i.reason for i in c.ignored}["Message/MIGversion"] == kith_cov.IGNORED["*/MIGversion"]


def test_of_envelope_maps_and_measures() -> None:
    c = of_envelope(ORU, CTX, "hl7")
    assert c.mapping == "hl7v2" and c.leaves > 30 and 0 < c.share <= 1


def test_mapping_without_coverage_support_is_refused() -> None:
    with pytest.raises(UnsupportedMessage) as exc:
        measure(b"", CTX, "tests.unit.test_coverage:_result", _result())
    assert exc.value.code == "COVERAGE_UNSUPPORTED"


def test_no_value_in_the_coverage(mapped_oru: MappingResult) -> None:
    c = measure(ORU, CTX, "hl7v2", mapped_oru)
    text = c.model_dump_json()
    values = {v for _, v in leaves_of(hl7_cov, ORU) if len(v) >= 3}
    assert not [v for v in values if v in text]


# -- the command line ----------------------------------------------------------------------------------


def _enjournal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, cwd=REPO, check=False
    )


def test_cli_map_coverage(tmp_path: Path) -> None:
    path = tmp_path / "oru.hl7"
    path.write_bytes(ORU)
    text = _enjournal("map", str(path), "--coverage")
    assert text.returncode == 0, text.stderr
    section = text.stdout[text.stdout.index("coverage ") :]
    assert " %: " in section and "leaves" in section and "unmapped" in section and "MSH-5.1" in section
    assert FNR not in section and "Solveig" not in section and "Nordvik" not in section
    as_json = _enjournal("map", str(path), "--coverage", "--json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["status"] == "mapped" and doc["coverage"]["leaves"] > 30
    assert "Solveig" not in json.dumps(doc["coverage"])


# -- floors on the fixture files -----------------------------------------------------------------------


def _fixture_pairs() -> Iterator[fixture_pairs.Pair]:
    for mapping in ("hl7v2", "kith", "csv"):
        yield from fixture_pairs.mapped(mapping)


def _share(pair: fixture_pairs.Pair) -> float:
    try:
        return of_envelope(pair.raw(), pair.context, pair.mapping).share
    except PermanentError as exc:  # a fixture that maps in the pairs test but not here would be a bug here
        raise AssertionError(f"{pair}: {exc.code}") from None


@pytest.mark.parametrize("pair", list(_fixture_pairs()), ids=str)
def test_fixture_coverage_does_not_drop(pair: fixture_pairs.Pair) -> None:
    """Each fixture's share stays at or above its floor (today's share); raise a floor when a mapping
    improves (``ENJOURNAL_REGEN=1`` writes today's shares, rounded down)."""
    floors: dict[str, float] = json.loads(FLOORS.read_text(encoding="utf-8")) if FLOORS.is_file() else {}
    share = _share(pair)
    if fixture_pairs.os.environ.get(fixture_pairs.REGEN_VARIABLE) == "1":
        floors[str(pair)] = int(share * 1000) / 1000
        FLOORS.write_text(json.dumps(dict(sorted(floors.items())), indent=2) + "\n", encoding="utf-8")
    assert share >= floors.get(str(pair), 0.0), f"{pair}: coverage {share:.3f} fell below its floor"


# -- the corpus table ----------------------------------------------------------------------------------


def test_corpus_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench import coverage as table

    (tmp_path / "hl7v2").mkdir()
    (tmp_path / "hl7v2" / "oru.hl7").write_bytes(ORU)
    (tmp_path / "hl7v2" / "bad.hl7").write_bytes(b"MSH|^~\\&|A|B|C|D|20260101||XYZ^Q99|1|P|2.5\r")
    (tmp_path / "SOURCES.tsv").write_text("local_name\trepo\nhl7v2/oru.hl7\tx\nhl7v2/bad.hl7\tx\n", encoding="utf-8")
    assert table.main([str(tmp_path), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "hl7v2/oru.hl7" in out and " % " in out
    assert "rejected: HL7_UNSUPPORTED_TYPE" in out and "commonest unmapped" in out
    assert "Solveig" not in out and FNR not in out
    assert table.main([str(tmp_path / "absent")]) == 0
