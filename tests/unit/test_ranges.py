"""mappings.ranges.parse_range: the reference range shapes labs write, and properties over generated ranges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.ranges import Range, parse_range


@pytest.mark.parametrize(
    "text,expected",
    [
        ("4.3 to 6.2", Range(4.3, 6.2)),
        ("4.3 TO 6.2", Range(4.3, 6.2)),
        ("4.3 til 6.2", Range(4.3, 6.2)),
        ("4.3-6.2", Range(4.3, 6.2)),
        ("4,3 - 6,2", Range(4.3, 6.2)),
        ("4.3–6.2", Range(4.3, 6.2)),
        ("4.3..6.2", Range(4.3, 6.2)),
        ("-2--1", Range(-2.0, -1.0)),
        ("-2 to 2", Range(-2.0, 2.0)),
        ("3.5-10.0 mmol/L", Range(3.5, 10.0)),
        ("0.5-2mg/L", Range(0.5, 2.0)),
        ("<5", Range(high=5.0, high_comparator="<")),
        ("< 0.6", Range(high=0.6, high_comparator="<")),
        ("<=5", Range(high=5.0, high_comparator="<=")),
        ("≤ 5", Range(high=5.0, high_comparator="<=")),
        (">=10", Range(low=10.0, low_comparator=">=")),
        ("> 60 mL/min", Range(low=60.0, low_comparator=">")),
        ("≥ 1,5", Range(low=1.5, low_comparator=">=")),
        ("6.2-4.3", Range()),
        ("neg", Range()),
        ("", Range()),
        ("5", Range()),
        ("1.2.3-4", Range()),
        ("<5-6", Range()),
        ("see comment 3", Range()),
    ],
)
def test_shapes(text: str, expected: Range) -> None:
    assert parse_range(text) == expected


_bound = st.decimals(min_value=-1000, max_value=100000, places=2, allow_nan=False, allow_infinity=False)
_sep = st.sampled_from(["-", " - ", "–", " to ", " til ", "..", " .. "])


def _write(value: object, comma: bool) -> str:
    text = str(value)
    return text.replace(".", ",") if comma else text


@given(_bound, _bound, _sep, st.booleans(), st.sampled_from(["", " mmol/L", " g/dL", "%"]))
def test_two_bounds_round_trip(a: object, b: object, sep: str, comma: bool, unit: str) -> None:
    low, high = sorted((float(str(a)), float(str(b))))
    lo_text, hi_text = (_write(x, comma) for x in sorted((a, b), key=lambda x: float(str(x))))
    assert parse_range(f"{lo_text}{sep}{hi_text}{unit}") == Range(low, high)


@given(_bound, st.sampled_from(["<", "<=", ">", ">=", "≤", "≥"]), st.sampled_from(["", " "]), st.booleans())
def test_one_bound_round_trip(a: object, comp: str, space: str, comma: bool) -> None:
    got = parse_range(f"{comp}{space}{_write(a, comma)}")
    value = float(str(a))
    if comp in ("<", "<=", "≤"):
        assert (got.low, got.high, got.high_comparator) == (None, value, {"≤": "<="}.get(comp, comp))
    else:
        assert (got.low, got.high, got.low_comparator) == (value, None, {"≥": ">="}.get(comp, comp))


@given(st.text(max_size=40))
def test_any_text_never_raises_and_bounds_are_ordered(text: str) -> None:
    got = parse_range(text)
    assert got.low is None or got.high is None or got.low <= got.high
