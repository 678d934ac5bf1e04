"""Norwegian person identifiers: validation (mod 11), classification, masking, namespace OIDs.

A national identity number is its own type (:class:`NationalId`): it validates its check
digits and prints itself masked, so it cannot leak into a log line by accident.

Rules (see shared NORWEGIAN.md §10): FNR ``DDMMYYiiikk``; D-number: first digit + 4;
H-number: third digit + 4; synthetic test numbers (Skatteetaten/Tenor): month + 80.
From 2032 the first check digit may be computed with a remainder offset 0..3.
"""

from __future__ import annotations

import enum
import re
from datetime import date

OID_FNR = "2.16.578.1.12.4.1.4.1"
OID_DNR = "2.16.578.1.12.4.1.4.2"
OID_FHN = "2.16.578.1.12.4.1.4.3"
OID_HPR = "2.16.578.1.12.4.1.4.4"
OID_DUF = "2.16.578.1.12.4.1.4.5"
OID_ENH = "2.16.578.1.12.4.1.4.101"
OID_RESH = "2.16.578.1.12.4.1.4.102"
OID_HER = "2.16.578.1.12.4.1.2"
#: H-numbers are organisation-internal; scope them as ``OID_HNR_PREFIX + <organisation>``.
OID_HNR_PREFIX = "urn:enjournal:hnr:"
#: Local identifiers are scoped to their source: ``OID_LOCAL_PREFIX + <source/authority>``.
OID_LOCAL_PREFIX = "urn:enjournal:local:"

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_DIGITS11 = re.compile(r"^\d{11}$")


class IdKind(str, enum.Enum):
    FNR = "FNR"
    DNR = "DNR"
    HNR = "HNR"
    FHN = "FHN"


def _check_digits_ok(digits: str) -> bool:
    d = [int(c) for c in digits]
    s1 = sum(w * x for w, x in zip(_W1, d[:9], strict=True))
    s2 = sum(w * x for w, x in zip(_W2, d[:10], strict=True))
    k2 = (11 - s2 % 11) % 11
    if k2 == 10 or k2 != d[10]:
        return False
    # Before 2032 only offset 0 is valid; from 2032 offsets 0..3 are (FNRVAL accepts both).
    return any((11 - (s1 + off) % 11) % 11 == d[9] for off in range(4))


def _strict_k1_ok(digits: str) -> bool:
    d = [int(c) for c in digits]
    k1 = (11 - sum(w * x for w, x in zip(_W1, d[:9], strict=True)) % 11) % 11
    return k1 != 10 and k1 == d[9]


def is_mod11_valid(value: str) -> bool:
    """True when ``value`` is 11 digits with valid check digits (any person-number kind)."""
    return bool(_DIGITS11.match(value)) and _check_digits_ok(value)


def birth_date(value: str) -> date | None:
    """The birth date an 11-digit number encodes (D/H/synthetic offsets removed), or None."""
    if not _DIGITS11.match(value):
        return None
    day, month, yy, ind = int(value[0:2]), int(value[2:4]), int(value[4:6]), int(value[6:9])
    if day > 40:
        day -= 40
    if month > 80:
        month -= 80
    elif month > 40:
        month -= 40
    if ind <= 499:
        century = 1900
    elif ind <= 749 and yy >= 54:
        century = 1800
    elif ind >= 900 and yy >= 40:
        century = 1900
    else:
        century = 2000
    try:
        return date(century + yy, month, day)
    except ValueError:
        return None


def classify(value: str) -> IdKind | None:
    """FNR, DNR or HNR by the digit rules, or None when the number is not valid."""
    if not is_mod11_valid(value) or birth_date(value) is None:
        return None
    if int(value[0]) >= 4:
        return IdKind.DNR
    month = int(value[2:4])
    if 41 <= month <= 52:
        return IdKind.HNR
    return IdKind.FNR


def mask(value: str) -> str:
    """Masked form for logs: first two and last two characters kept (``13*******16``)."""
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


class NationalId:
    """A validated Norwegian person number. ``str()``/``repr()`` are masked; ``.value`` is not.

    Raises ``ValueError`` (with no digits in the message) when the number is invalid.
    """

    __slots__ = ("value", "kind")

    def __init__(self, value: str, kind: IdKind | None = None) -> None:
        value = value.strip()
        found = classify(value)
        if found is None:
            raise ValueError("not a valid Norwegian person number (mod 11 / date)")
        if kind is not None and kind is not found and kind is not IdKind.FHN:
            raise ValueError(f"number is a {found.value}, not a {kind.value}")
        self.value = value
        self.kind = kind or found

    @property
    def system(self) -> str:
        return {IdKind.FNR: OID_FNR, IdKind.DNR: OID_DNR, IdKind.FHN: OID_FHN}.get(self.kind, OID_HNR_PREFIX)

    @property
    def synthetic(self) -> bool:
        return int(self.value[2]) >= 8

    def __str__(self) -> str:
        return mask(self.value)

    def __repr__(self) -> str:
        return f"NationalId({self.kind.value}, {mask(self.value)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NationalId) and other.value == self.value

    def __hash__(self) -> int:
        return hash(("NationalId", self.value))


def synthetic_fnr(day: int, month: int, year: int, individual: int) -> str | None:
    """A synthetic (month + 80) number with valid check digits, or None if none exists.

    Test data only: never a real person's number.
    """
    base = f"{day:02d}{month + 80:02d}{year % 100:02d}{individual:03d}"
    d = [int(c) for c in base]
    k1 = (11 - sum(w * x for w, x in zip(_W1, d[:9], strict=True)) % 11) % 11
    if k1 == 10:
        return None
    d.append(k1)
    k2 = (11 - sum(w * x for w, x in zip(_W2, d[:10], strict=True)) % 11) % 11
    if k2 == 10:
        return None
    return base + str(k1) + str(k2)


FNR_LIKE = re.compile(r"(?<!\d)\d{11}(?!\d)")
_LONG_DIGIT_RUN = re.compile(r"\d{11,}")


def log_safe(token: str) -> str:
    """A generated id (hex, GUID) with every run of 11+ digits broken up, so that no id we make can ever
    look like a national identity number in a log line (and be masked there). Deterministic: digits
    after the tenth of a run become the letters g..p."""
    return _LONG_DIGIT_RUN.sub(
        lambda m: m.group(0)[:10] + "".join(chr(ord("g") + int(c)) for c in m.group(0)[10:]), token
    )


def find_valid_numbers(text: str) -> list[str]:
    """Every mod-11-valid 11-digit run in ``text`` (used by log checks and tests)."""
    return [m for m in FNR_LIKE.findall(text) if is_mod11_valid(m) and _strict_k1_ok(m)]
