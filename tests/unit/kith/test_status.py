"""The KITH status table (:mod:`mappings.kith.status`): every row, and what it means for a whole Svarrapport."""

from __future__ import annotations

import re

import pytest

from engine.errors import MappingError, PermanentError
from engine.model import RecordStatus
from mappings.kith import status as st
from tests.unit.kith.helpers import KITH, mapped, records

SYNTH = (KITH / "synthetic_svarrapport_v1.4.xml").read_text(encoding="utf-8")
C, P, F, CORR = RecordStatus.CANCELLED, RecordStatus.PRELIMINARY, RecordStatus.FINAL, RecordStatus.CORRECTED

# One example per row of the table, in the table's order: (serv_type, investigation, report) -> status.
ROWS = [
    (("C", "3", "F"), C),
    (("N", "14", "F"), C),
    (("M", "2", "F"), P),
    (("N", "15", None), P),
    (("N", "1", "F"), CORR),
    (("M", "3", "F"), CORR),
    (("M", "4", "P"), CORR),
    (("M", "11", None), CORR),
    (("N", "3", "P"), F),
    (("A", "4", "F"), F),
    ((None, "11", "F"), F),
    (("M", None, "P"), P),
    (("N", None, "S"), None),
    (("M", None, "F"), CORR),
    (("H", None, None), F),
]


def test_every_row_has_an_example() -> None:
    assert len(ROWS) == len(st.TABLE)


@pytest.mark.parametrize(("index", "codes", "expected"), [(i, c, e) for i, (c, e) in enumerate(ROWS)])
def test_row(index: int, codes: tuple[str | None, str | None, str | None], expected: RecordStatus | None) -> None:
    first = next(i for i, (s, inv, rep, _) in enumerate(st.TABLE) if _hits((s, inv, rep), codes))
    assert first == index
    assert st.status(*codes) is expected


def _hits(row: tuple[str, str, str], codes: tuple[str | None, str | None, str | None]) -> bool:
    return all(r == st.ANY or (r == st.NONE and v is None) or r == v for r, v in zip(row, codes, strict=True))


def report(serv_type: str, status: str, item_status: bool) -> bytes:
    xml = SYNTH.replace('<ServType V="N" DN="Ny"/>\n\t\t<IssueDate', f'<ServType V="{serv_type}"/>\n\t\t<IssueDate')
    xml = xml.replace('<Status V="F" DN="Endelig rapport"/>', f'<Status V="{status}"/>')
    if not item_status:
        xml = re.sub(r"\s*<StatusInvestigation [^>]*/>", "", xml)
        xml = re.sub(r"\s*<ServType V=\"N\" DN=\"Ny\"/>", "", xml)  # the items' own ServType
    return xml.encode()


def test_a_preliminary_change_stays_preliminary() -> None:
    result = mapped(report("M", "P", item_status=False))
    (doc,) = records(result, "report")
    obs = records(result, "observation")
    assert doc.status is P and obs and all(o.status is P for o in obs)


def test_items_without_their_own_status_inherit_a_preliminary_report() -> None:
    obs = records(mapped(report("N", "P", item_status=False)), "observation")
    assert obs and all(o.status is P for o in obs)


def test_items_with_their_own_final_status_stay_final_in_a_preliminary_report() -> None:
    obs = records(mapped(report("N", "P", item_status=True)), "observation")
    assert obs and all(o.status is F for o in obs)


def test_a_final_change_is_a_correction() -> None:
    result = mapped(report("M", "F", item_status=False))
    assert {r.status for r in result.records if r.kind in ("report", "observation")} == {CORR}


def test_a_planned_report_without_results_is_a_dead_letter_with_a_reason() -> None:
    with pytest.raises(MappingError) as info:
        mapped(report("N", "S", item_status=False))
    assert isinstance(info.value, PermanentError) and info.value.code == "KITH_NO_RESULTS"


def test_a_planned_report_gives_observations_only_for_items_with_a_status_of_their_own() -> None:
    raw = report("N", "S", item_status=False).replace(
        b"<IdResultItem>900001</IdResultItem>", b'<IdResultItem>900001</IdResultItem><StatusInvestigation V="15"/>'
    )
    result = mapped(raw)
    (doc,) = records(result, "report")
    (obs,) = records(result, "observation")
    assert doc.status is P and obs.status is P
    assert result.warnings == tuple(f"KITH_PLANNED:ResultItem[{i}]" for i in (2, 3, 4))
