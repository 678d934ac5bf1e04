"""Units, numbers, comparators and reference intervals of Svarrapport results."""

from __future__ import annotations

import pytest

from mappings.kith import units


@pytest.mark.parametrize("raw", ["10E9/L", "10^9 /L", "10#9/L", "10^9/l", "x10*9/L", " 10E9 / L "])
def test_power_of_ten_spellings_are_one_unit(raw: str) -> None:
    assert units.normalise_unit(raw) == "10^9/L"


@pytest.mark.parametrize(
    "raw,unit",
    [
        ("0", None),
        ("", None),
        (None, None),
        ("mmol/l", "mmol/L"),
        ("µmol/l", "µmol/L"),
        ("umol/L", "µmol/L"),
        ("IE/L", "IU/L"),
        ("g/dl", "g/dL"),
        ("mL/min/1,73m2", "mL/min/1.73m2"),
        ("10E-3/L", "10^-3/L"),
        ("10^12/l", "10^12/L"),
        ("Celler/µL", "Celler/µL"),
        ("mg/L FEU", "mg/L FEU"),  # a qualifier keeps its space (not mg/LFEU)
        (" mg / L  FEU ", "mg/L FEU"),
        ("mmol / l", "mmol/L"),
    ],
)
def test_known_spellings(raw: str | None, unit: str | None) -> None:
    assert units.normalise_unit(raw) == unit


@pytest.mark.parametrize(
    "raw,value,comp",
    [
        ("11.0", 11.0, None),
        ("0,5", 0.5, None),
        ("<0.5", 0.5, "<"),
        ("> 60", 60.0, ">"),
        ("<=1,2", 1.2, "<="),
        ("-3.5", -3.5, None),
        ("pos", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_parse_number_with_comma_decimals_and_comparators(
    raw: str | None, value: float | None, comp: str | None
) -> None:
    assert units.parse_number(raw) == (value, comp)


@pytest.mark.parametrize(
    "raw,comp", [("LT", "<"), ("GT", ">"), ("LE", "<="), ("GE", ">="), ("lt", "<"), ("XX", None), (None, None)]
)
def test_arithmetic_comparator(raw: str | None, comp: str | None) -> None:
    assert units.comparator(raw) == comp


@pytest.mark.parametrize(
    "descr,low,high",
    [
        ("3,5 - 11,0", 3.5, 11.0),
        ("11,7 - 15,3", 11.7, 15.3),
        ("10 - 22", 10.0, 22.0),
        ("3.5-11", 3.5, 11.0),
        ("< 0,5", None, 0.5),
        ("<1,2", None, 1.2),
        ("> 60", 60.0, None),
        ("<= 5 mmol/L", None, 5.0),
        ("2,5 - 4,5 mmol/L", 2.5, 4.5),
        ("4 til 8", 4.0, 8.0),
        ("Menn: 13-17, kvinner: 11-15", None, None),
        ("negativ", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_reference_interval_parsing(descr: str | None, low: float | None, high: float | None) -> None:
    assert units.parse_range(descr) == (low, high)
