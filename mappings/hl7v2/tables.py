"""HL7 v2 code tables (``tables.json`` beside this module, loaded once).

* ``sex`` (HL7 table 0001) -> Person.sex; ``patient_class`` (0004) -> Encounter.encounter_class.
* ``result_status`` (0085, OBX-11 / OBR-25) -> RecordStatus; ``document_completion`` (0271, TXA-17).
* ``coded``: a CE/CWE repetition whole (primary, alternates 4-6/10-12, original text 9).
* ``priority`` (0027, OBR-5 / TQ1-9 / ORC-7.6) -> FHIR request priority; ``hpr_authorities`` /
  ``her_authorities``: how an XCN/XON assigning authority names the HPR or HER register.
* ``coding_systems``: coding system names (table 0396) -> OIDs for Coding.system (unknown names kept).
* ``national_oids`` / ``national_id_types`` / ``national_authorities``: how a PID-3 repetition
  declares a Norwegian national number (OID in CX-4.2, type in CX-5, name in CX-4.1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.model import Coding, RecordStatus
from mappings.hl7v2.message import Delimiters, Segment, split_value

_PATH = Path(__file__).with_name("tables.json")


@lru_cache(maxsize=1)
def tables() -> dict[str, Any]:
    """The parsed table file (cached)."""
    data: dict[str, Any] = json.loads(_PATH.read_text(encoding="utf-8"))
    return data


def sex(code: str) -> str | None:
    return tables()["sex"].get(code.strip().upper()) if code else None


def patient_class(code: str) -> str | None:
    """Encounter class for PV1-2 (unknown codes kept lower-cased, ``N`` -> None)."""
    c = code.strip().upper()
    if not c or c in tables()["no_encounter_classes"]:
        return None
    return tables()["patient_class"].get(c, c.lower())  # type: ignore[no-any-return]


@lru_cache(maxsize=64)
def result_status(code: str) -> RecordStatus | None:
    v = tables()["result_status"].get(code.strip().upper()) if code else None
    return RecordStatus(v) if v else None


def document_status(completion: str, availability: str) -> RecordStatus:
    """TXA-19 cancelled/obsolete wins; else TXA-17 (unknown -> final)."""
    if availability.strip().upper() in tables()["document_availability_cancelled"]:
        return RecordStatus.CANCELLED
    v = tables()["document_completion"].get(completion.strip().upper(), "final")
    return RecordStatus(v)


def coding_system(name: str) -> str | None:
    """OID for a coding system name (table 0396); unknown names are kept as given."""
    n = name.strip()
    if not n:
        return None
    return tables()["coding_systems"].get(n.upper(), n)  # type: ignore[no-any-return]


@lru_cache(maxsize=16384)
def coding(code: str, display: str = "", system: str = "") -> Coding | None:
    """A Coding, or None when there is neither code nor display (cached: Codings are frozen)."""
    code, display = code.strip(), display.strip()
    if not code and not display:
        return None
    return Coding(system=coding_system(system), code=code or display, display=display or None)


def coding_of(seg: Segment, f: int) -> Coding | None:
    """CE/CWE field ``f`` of ``seg`` -> Coding (fast path: code, text and system read directly)."""
    cs = seg.comps(f)
    n = len(cs)
    code, text = cs[0], cs[1] if n > 1 else ""
    if code or text:
        return coding(code, text or (cs[8] if n > 8 else ""), cs[2] if n > 2 else "")
    return coding_from_parts(seg.parts(f))


def coding_from_parts(parts: list[list[str]]) -> Coding | None:
    """CE/CWE components (1 code, 2 text, 3 system; 4-6 alternate; 9 original text) -> Coding."""

    def c(i: int) -> str:
        return parts[i][0] if i < len(parts) else ""

    if c(0) or c(1):
        return coding(c(0), c(1) or c(8), c(2))
    if c(3) or c(4):
        return coding(c(3), c(4), c(5))
    return coding("", c(8)) if c(8) else None


def national_declared(oid: str, namespace: str, id_type: str) -> tuple[bool, str | None]:
    """(is national, declared kind) for one CX: by OID, then identifier type, then authority name."""
    t = tables()
    if oid in t["national_oids"]:
        return True, t["national_oids"][oid]
    if namespace in t["national_oids"]:
        return True, t["national_oids"][namespace]
    ty = id_type.strip().upper()
    if ty in t["national_id_types"]:
        return True, t["national_id_types"][ty]
    ns = namespace.strip().upper()
    if ns in t["national_authorities"]:
        return True, t["national_authorities"][ns]
    return False, None


@dataclass(frozen=True, slots=True)
class Coded:
    """A CE/CWE value read whole: the primary coding, the alternates and the original text."""

    code: Coding | None
    alt: tuple[Coding, ...] | None  # CE/CWE 4-6 (and CWE 10-12) beside a primary coding
    text: str | None  # CWE-9 original text when it differs from the primary's display


@lru_cache(maxsize=8192)
def coded(raw: str, d: Delimiters) -> Coded:
    """One raw CE/CWE repetition -> :class:`Coded` (cached: a test's code recurs in every message)."""
    parts = split_value(raw, d) if raw else []

    def c(i: int) -> str:
        return parts[i][0].strip() if i < len(parts) else ""

    primary = coding_from_parts(parts)
    alts: list[Coding] = []
    if c(0) or c(1):  # the primary came from 1-3: 4-6 and 10-12 are alternates
        alts = [a for a in (coding(c(3), c(4), c(5)), coding(c(9), c(10), c(11))) if a is not None]
    text = c(8) or None
    if text is not None and primary is not None and text == primary.display:
        text = None
    return Coded(primary, tuple(alts) or None, text)


def coded_field(seg: Segment, f: int) -> Coded:
    """The first repetition of CE/CWE field ``f`` of ``seg`` as :class:`Coded`."""
    reps = seg.reps(f)
    return coded(reps[0] if reps else "", seg.d)


def priority(code: str) -> str | None:
    """FHIR request priority for an HL7 priority (table 0027: S stat, A asap, R routine, P/T urgent, C routine)."""
    return tables()["priority"].get(code.strip().upper()) if code else None


def authority_kind(*names: str) -> str | None:
    """``HPR`` or ``HER`` when one of ``names`` (an assigning authority's namespace, OID or id type) says so."""
    t = tables()
    for n in names:
        u = n.strip().upper()
        if not u:
            continue
        if u in t["hpr_authorities"]:
            return "HPR"
        if u in t["her_authorities"]:
            return "HER"
    return None


def diagnostic_section(code: str) -> str | None:
    """Report category for OBR-24 (table 0074: CH/HM -> lab, MB -> microbiology, RAD -> radiology ...;
    unknown codes kept lower-cased)."""
    c = code.strip().upper()
    return tables()["diagnostic_section"].get(c, c.lower()) if c else None
