"""ADT -> Person + Encounter: fields, keys, statuses per event, event time, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from engine.model import Encounter, Person, RecordStatus
from mappings.hl7v2 import map_message
from mappings.hl7v2.timeutil import OSLO
from tests.unit.hl7v2.conftest import RECEIVED, fixture_bytes, make_ctx


def _pv1(**fields: str) -> str:
    values = [""] * 46
    for k, v in fields.items():
        values[int(k[1:])] = v
    return "PV1|" + "|".join(values[1:]).rstrip("|")


def adt(event: str, pv1: str, evn: str = "EVN||20260315101400", pid_extra: str = "") -> bytes:
    return (
        f"MSH|^~\\&|PAS|HOSP|ENJ|KOMM|20260315101500||ADT^{event}|C-{event}|P|2.5\r{evn}\r"
        f"PID|1||900^^^HOSP^PI||Nordmann^Ola^Johan||19700101|M|||Gate 2^^Bergen^^5003^NOR{pid_extra}\r"
        f"{pv1}\r"
    ).encode()


PV1 = _pv1(f2="I", f3="MED^12^B^HOSP", f19="V-1", f44="20260301080000")


def _records(raw: bytes) -> tuple[Person, Encounter]:
    person, enc = map_message(raw, make_ctx()).records
    return person, enc


def test_person_fields_from_pid() -> None:
    person, _ = _records(adt("A01", PV1))
    assert (person.family_name, person.given_name, person.middle_name, person.sex) == (
        "Nordmann",
        "Ola",
        "Johan",
        "male",
    )
    assert person.birth_date == date(1970, 1, 1)
    assert person.address == "Gate 2, 5003 Bergen, NOR"
    assert person.event_time == datetime(2026, 3, 15, 10, 14, tzinfo=OSLO)


def test_death_fields() -> None:
    person, _ = _records(adt("A08", PV1, pid_extra="|" * 18 + "20260310120000|Y"))
    assert person.deceased_at == datetime(2026, 3, 10, 12, 0, tzinfo=OSLO)
    person, _ = _records(adt("A08", PV1, pid_extra="|" * 19 + "Y"))
    assert person.deceased_at is None and "DECEASED_TIME_UNKNOWN" in person.flags


def test_encounter_fields_and_key() -> None:
    _, enc = _records(adt("A01", PV1))
    assert enc.key == "hl7v2|HOSP|encounter|V-1"
    assert (enc.encounter_class, enc.location, enc.facility, enc.status) == (
        "inpatient",
        "MED/12/B",
        "HOSP",
        RecordStatus.FINAL,
    )
    assert enc.start == datetime(2026, 3, 1, 8, 0, tzinfo=OSLO) and enc.end is None


def test_a11_cancels_and_a13_undoes_discharge_on_the_same_key() -> None:
    _, admit = _records(adt("A01", PV1))
    _, cancel = _records(adt("A11", PV1, evn="EVN||20260315110000"))
    assert cancel.key == admit.key and cancel.status is RecordStatus.CANCELLED
    assert cancel.event_time > admit.event_time
    discharged = _pv1(f2="I", f19="V-1", f44="20260301080000", f45="20260310120000")
    _, dis = _records(adt("A03", discharged))
    assert dis.end == datetime(2026, 3, 10, 12, 0, tzinfo=OSLO)
    _, undo = _records(adt("A13", discharged, evn="EVN||20260315120000"))
    assert undo.key == dis.key and undo.end is None and undo.status is RecordStatus.FINAL
    assert "DISCHARGE_CANCELLED" in undo.flags


def test_a03_without_pv1_45_ends_at_event_occurred() -> None:
    _, enc = _records(adt("A03", PV1, evn="EVN||20260315101400||||20260315090000"))
    assert enc.end == datetime(2026, 3, 15, 9, 0, tzinfo=OSLO)


def test_a05_is_preliminary() -> None:
    _, enc = _records(adt("A05", _pv1(f2="P", f19="V-9")))
    assert enc.status is RecordStatus.PRELIMINARY


@pytest.mark.parametrize(
    "pv1,expected",
    [
        (_pv1(f2="N", f19="V-1"), 1),  # class N: not an encounter
        (_pv1(f2="", f19="V-1"), 1),
        (_pv1(f2="O"), 2),
    ],
)
def test_when_pv1_makes_an_encounter(pv1: str, expected: int) -> None:
    assert len(map_message(adt("A08", pv1), make_ctx()).records) == expected


def test_a28_a31_only_with_visit_number() -> None:
    assert len(map_message(adt("A31", _pv1(f2="O")), make_ctx()).records) == 1
    assert len(map_message(adt("A31", _pv1(f2="O", f19="V-2")), make_ctx()).records) == 2


def test_encounter_key_fallbacks() -> None:
    _, enc = _records(adt("A04", _pv1(f2="E", f44="20260301080000")))
    assert "KEY_FROM_ADMIT_TIME" in enc.flags and "20260301080000" in enc.key
    _, enc = _records(adt("A04", _pv1(f2="E")))
    assert enc.key == "hl7v2|HOSP|encounter|msg|C-A04" and "KEY_FROM_MESSAGE_ID" in enc.flags


def test_event_time_precedence() -> None:
    p, _ = _records(adt("A08", PV1, evn="EVN|A08||||||"))
    assert p.event_time == datetime(2026, 3, 15, 10, 15, tzinfo=OSLO)  # MSH-7
    p, _ = _records(adt("A08", PV1, evn="EVN|A08|||||20260314000000"))
    assert p.event_time == datetime(2026, 3, 14, tzinfo=OSLO)  # EVN-6
    p, _ = _records(adt("A08", PV1, evn="EVN|A08|20260315101400+0000"))
    assert p.event_time == datetime(2026, 3, 15, 10, 14, tzinfo=UTC)


def test_event_time_from_receipt_when_no_source_time() -> None:
    raw = b"MSH|^~\\&|PAS|HOSP|||||ADT^A08|1|P|2.5\rPID|1||900^^^HOSP^PI||X^Y\r"
    person = map_message(raw, make_ctx()).records[0]
    assert person.event_time == RECEIVED and "EVENT_TIME_FROM_RECEIPT" in person.flags


def test_norwegian_fixture_latin1() -> None:
    result = map_message(fixture_bytes("no_ADT-A08_synthetic_8859-1.hl7"), make_ctx())
    person = result.records[0]
    assert (person.family_name, person.given_name, person.middle_name) == ("Ødegård", "Åse", "Bjørg")
    assert person.address == "Storgata 1, 9008 Tromsø, NOR"
    assert person.subject.kind == "FNR" and person.birth_date == date(1969, 11, 13)
    assert person.event_time.utcoffset() == timedelta(hours=1)


def test_invalid_birth_date_is_dropped_and_flagged() -> None:
    raw = adt("A08", PV1).replace(b"19700101", b"10131113")
    person = map_message(raw, make_ctx()).records[0]
    assert person.birth_date is None and "BIRTH_DATE_INVALID" in person.flags
