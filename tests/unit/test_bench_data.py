"""The benchmark's generators: deterministic, synthetic ids only, and accepted by the real mappings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench import data
from engine import ids
from engine.model import MapContext


def _ctx(charset: str | None = None, options: dict | None = None) -> MapContext:
    return MapContext(
        envelope_id="t",
        adapter="t",
        source_system="t",
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        charset=charset,
        options=options or {},
    )


def test_patients_are_deterministic_distinct_and_synthetic() -> None:
    a, b = data.patients(200, seed=3), data.patients(200, seed=3)
    assert a == b and a != data.patients(200, seed=4)
    assert len({p.fnr for p in a}) == 200
    for p in a:
        assert 81 <= int(p.fnr[2:4]) <= 92  # month + 80
        assert ids.synthetic_fnr(int(p.fnr[:2]), int(p.fnr[2:4]) - 80, 1900 + int(p.fnr[4:6]), int(p.fnr[6:9])) == p.fnr


def test_hl7_messages_are_latin1_with_norwegian_pid() -> None:
    p = data.patients(1)[0]
    oru = data.oru_r01(5, p)
    assert oru == data.oru_r01(5, p) and oru != data.oru_r01(6, p)
    text = oru.decode("iso-8859-1")
    assert "|8859/1\r" in text.split("PID")[0]
    assert f"{p.fnr}^^^&2.16.578.1.12.4.1.4.1&ISO^NNNOR~{p.local}^^^SYKEHUSET_HF^PI" in text
    assert text.count("\rOBX|") == 8
    assert any(ch in text for ch in "æøåÆØÅ")
    assert "ADT^A08" in data.adt_a08(1, p).decode("iso-8859-1")


def test_hl7_messages_map() -> None:
    from mappings.hl7v2 import map_message

    p = data.patients(1)[0]
    oru = map_message(data.oru_r01(1, p), _ctx("8859/1"))
    kinds = [r.kind for r in oru.records]
    assert kinds == ["person", *["observation"] * 8, "report", "requisition"]
    adt = map_message(data.adt_a08(1, p), _ctx("8859/1"))
    assert {r.kind for r in adt.records} >= {"person"} and adt.links


def test_svarrapport_varies_ids_and_maps() -> None:
    template = data.kith_template()
    if template is None:
        pytest.skip("synthetic Svarrapport template not present")
    from mappings.kith import map_message

    p = data.patients(2)
    a, b = data.svarrapport(1, p[0], template), data.svarrapport(2, p[1], template)
    assert a == data.svarrapport(1, p[0], template) and a != b
    assert p[0].fnr.encode() in a and b"24838541212" not in a
    res = map_message(a, _ctx())
    assert any(r.kind == "observation" for r in res.records)
    keys_a = {r.key for r in res.records}
    assert not keys_a & {r.key for r in map_message(b, _ctx()).records}


def test_csv_has_20_columns_and_maps(tmp_path) -> None:
    from mappings.csv_decl import map_message, parse_spec

    pats = data.patients(10)
    rows = list(data.csv_rows(30, pats))
    assert rows == list(data.csv_rows(30, pats)) and len(data.CSV_HEADER) == 20
    assert all(len(r.split(";")) == 20 for r in rows)
    size = data.write_csv(tmp_path / "x.csv", 30, pats)
    assert size == (tmp_path / "x.csv").stat().st_size
    head = ";".join(f'"{c}"' for c in data.CSV_HEADER)
    opts = parse_spec(data.csv_spec()).model_dump(mode="json", exclude_none=True)
    res = map_message(("\n".join([head, *rows]) + "\n").encode(), _ctx("utf-8", opts))
    assert len([r for r in res.records if r.kind == "care_event"]) == 30


def test_cpu_spent_groups_engine_children_broker_and_database() -> None:
    from bench.cpu import per_message_note, spent

    before = {10: ("python", 1, 1.0), 20: ("beam.smp", 1, 5.0), 30: ("postgres", 1, 2.0), 40: ("bash", 1, 9.0)}
    after = {
        10: ("python", 1, 3.0),
        11: ("python", 10, 0.5),
        20: ("beam.smp", 1, 6.0),
        30: ("postgres", 1, 2.5),
        31: ("postgres", 30, 0.25),
        40: ("bash", 1, 99.0),
    }
    used = spent(before, after, [10])
    assert used == {"engine": 2.5, "broker": 1.0, "database": 0.75}
    assert per_message_note(used, 1000) == "CPU µs/msg engine 2,500 broker 1,000 database 750"
    assert per_message_note({}, 1000) == ""
    split = spent(before, after, [10, 12], intake_pid=10)
    assert split == {"engine": 2.5, "broker": 1.0, "database": 0.75, "intake": 2.0}


def test_cpu_stages_run() -> None:
    from bench.stages import cpu_stages

    results = cpu_stages(64, data.patients(10))
    assert len(results) >= 8 and all(r.messages > 0 for r in results)
