"""Patient identity from an HL7 v2 PID segment (v2.3-v2.8): identifiers, subject, Person.

Identifiers come from PID-3 (every repetition), PID-2 and PID-4 (CX: 1 id, 4 assigning authority
``namespace&OID&ISO``, 5 identifier type, 6 assigning facility):

* a Norwegian national number is recognised by its authority OID (``2.16.578.1.12.4.1.4.1`` FNR,
  ``.2`` DNR, ``.3`` FHN), by identifier type (``NNNOR``, ``FNR``, ``DNR``, ``FHN``, ``HNR``, ``NH``)
  or by authority name, and validated mod 11 by :func:`engine.model.national_identifier`; an invalid
  number stays as a flagged local identifier (warning ``HL7_INVALID_NATIONAL_ID``), never dropped;
* any other id is local, scoped to its authority (OID, else namespace, else assigning facility,
  else the sending facility).

The subject is the best identifier (FNR > DNR > FHN > HNR > local, first in message order within a
kind). Person: name PID-5 (legal name preferred; XPN 1 family, 2 given, 3 further given names ->
``middle_name``), birth date PID-7, sex PID-8, address PID-11 (home preferred), death PID-29/PID-30,
the regular GP PD1-4 (party ``gp``). The person key is ``person:hl7v2:<facility>:<hash of the subject>``
in every message type, so an ORU's or MDM's copy of the demographics is a version of the same Person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

from engine import ids
from engine.errors import ValidationError
from engine.model import Identifier, IdentityLink, Party, Person, Provenance, link_all, national_identifier
from mappings.hl7v2 import parties, tables
from mappings.hl7v2.common import Source, digest
from mappings.hl7v2.message import Delimiters, Segment, split_reps, split_value
from mappings.hl7v2.timeutil import parse_date, parse_dtm

_RANK = {"FNR": 0, "DNR": 1, "FHN": 2, "HNR": 3, "LOCAL": 4, "OTHER": 5}
Parts = list[list[str]]
_EARLIEST_BIRTH_YEAR = 1850
_PLACEHOLDER_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_PLACEHOLDER_PROVENANCE = Provenance(adapter="-", envelope_id="-")
_encoded_birth = lru_cache(maxsize=4096)(ids.birth_date)  # the birth date a national number encodes


def _p(parts: Parts, c: int, s: int = 1) -> str:
    if c - 1 < len(parts):
        subs = parts[c - 1]
        if s - 1 < len(subs):
            return subs[s - 1].strip()
    return ""


@dataclass(frozen=True)
class Patient:
    """The identifiers one PID carries, its best identifier and the same-message links."""

    identifiers: tuple[Identifier, ...]
    subject: Identifier
    warnings: tuple[str, ...] = ()

    @cached_property
    def links(self) -> tuple[IdentityLink, ...]:
        return link_all(self.identifiers) if len(self.identifiers) > 1 else ()


def cx_identifier(cx: Parts, default_scope: str) -> Identifier | None:
    """One CX repetition -> Identifier (None when it has no id value)."""
    value = _p(cx, 1)
    if not value or value == '""':
        return None
    ns, oid, id_type = _p(cx, 4, 1), _p(cx, 4, 2), _p(cx, 5)
    scope = oid or ns or _p(cx, 6, 2) or _p(cx, 6, 1) or default_scope
    national, declared = tables.national_declared(oid, ns, id_type)
    if national:
        return national_identifier(value, declared=declared, hnr_scope=scope)
    return Identifier(system=ids.OID_LOCAL_PREFIX + scope, value=value, kind="LOCAL")


@lru_cache(maxsize=4096)
def _cx_raw(raw: str, d: Delimiters, default_scope: str) -> Identifier | None:
    return cx_identifier(split_value(raw, d), default_scope)


def identifiers(seg: Segment, fields: tuple[int, ...], default_scope: str) -> list[Identifier]:
    """Every usable identifier in the CX ``fields`` of ``seg``, in order, duplicates removed."""
    return _identifiers([r for f in fields for r in seg.reps(f)], seg.d, default_scope)


def _identifiers(reps: list[str], d: Delimiters, default_scope: str) -> list[Identifier]:
    found = (_cx_raw(r, d, default_scope) for r in reps)
    return list(dict.fromkeys(i for i in found if i is not None))


def best(idents: list[Identifier] | tuple[Identifier, ...]) -> Identifier:
    """FNR > DNR > FHN > HNR > local; an invalid-number identifier ranks after valid locals."""
    order = {i: n for n, i in enumerate(idents)}
    return min(idents, key=lambda i: (_RANK[i.kind], "INVALID_NUMBER" in i.flags, order[i]))


def patient(pid: Segment, src: Source) -> Patient:
    """Identifiers of ``pid`` (PID-3, PID-2, PID-4); ValidationError ``HL7_NO_PATIENT_ID`` when none."""
    return _patient(pid.raw(3), pid.raw(2), pid.raw(4), pid.d, src.facility)


@lru_cache(maxsize=4096)
def _patient(pid3: str, pid2: str, pid4: str, d: Delimiters, default_scope: str) -> Patient:
    """:func:`patient` from the raw fields (cached: a citizen recurs in many messages; Patient is frozen)."""
    found = _identifiers([r for raw in (pid3, pid2, pid4) if raw for r in raw.split(d.repetition)], d, default_scope)
    if not found:
        raise ValidationError("PID carries no usable patient identifier", code="HL7_NO_PATIENT_ID")
    warnings = ("HL7_INVALID_NATIONAL_ID",) if any("INVALID_NUMBER" in i.flags for i in found) else ()
    return Patient(tuple(found), best(found), warnings)


def person_key(src: Source, subject: Identifier) -> str:
    return f"person:hl7v2:{src.facility}:{digest(subject)}"


def _pick(reps: list[Parts], type_comp: int, preferred: str) -> Parts | None:
    for rep in reps:
        if _p(rep, type_comp).upper() == preferred:
            return rep
    return reps[0] if reps else None


def _name(pid: Segment) -> tuple[str | None, str | None, str | None]:
    return _name_of(pid.raw(5), pid.d)


@lru_cache(maxsize=4096)
def _name_of(xpns: str, d: Delimiters) -> tuple[str | None, str | None, str | None]:
    """(family, given, middle) from raw PID-5 (cached: a citizen's name recurs): XPN 1 family name, 2 given
    name, 3 second and further given names."""
    xpn = _pick(split_reps(xpns, d), 7, "L")
    if xpn is None:
        return None, None, None
    return _p(xpn, 1) or None, _p(xpn, 2) or None, _p(xpn, 3) or None


def _address(pid: Segment) -> str | None:
    return _address_of(pid.raw(11), pid.d)


@lru_cache(maxsize=4096)
def _address_of(xads: str, d: Delimiters) -> str | None:
    """The address text from raw PID-11 (cached: a citizen's address recurs)."""
    xad = _pick(split_reps(xads, d), 7, "H")
    if xad is None:
        return None
    street = " ".join(s.strip() for s in (xad[0] if xad else []) if s.strip())
    city = " ".join(x for x in (_p(xad, 5), _p(xad, 3)) if x)
    text = ", ".join(x for x in (street, _p(xad, 2), city, _p(xad, 4), _p(xad, 6)) if x)
    return text or None


def person(pid: Segment, pat: Patient, src: Source) -> Person:
    """The Person version this PID states (see the module docstring).

    What a PID states about a citizen recurs in every message about them: it is built and validated once
    per distinct PID (and PD1-4, facility, flags) and each message's copy gets its own event time and
    provenance.
    """
    pd1 = src.msg.segment("PD1")
    template = _person(tuple(pid.fields), pd1.raw(4) if pd1 is not None else "", pid.d, src.facility, src.flags)
    return template.model_copy(update={"event_time": src.event_time, "provenance": src.prov})


@lru_cache(maxsize=4096)
def _person(fields: tuple[str, ...], pd1_4: str, d: Delimiters, facility: str, src_flags: tuple[str, ...]) -> Person:
    pid = Segment("PID", list(fields), d)
    pat = _patient(pid.raw(3), pid.raw(2), pid.raw(4), d, facility)  # cached: the caller's own Patient
    family, given, middle = _name(pid)
    born = parse_date(pid.get(7))
    died = parse_dtm(pid.get(29))
    flags = list(src_flags)
    if born is not None and born.year < _EARLIEST_BIRTH_YEAR:
        born = None
        flags.append("BIRTH_DATE_INVALID")
    if pid.get(30).upper() == "Y" and died is None:
        flags.append("DECEASED_TIME_UNKNOWN")
    if (
        born is not None
        and pat.subject.kind in ("FNR", "DNR")
        and _encoded_birth(pat.subject.value)
        not in (
            None,
            born,
        )
    ):
        flags.append("BIRTHDATE_MISMATCH")
    return Person.model_validate(
        {  # the same model as Person(**kwargs), validated more cheaply (once per record on the hot path)
            "key": f"person:hl7v2:{facility}:{digest(pat.subject)}",
            "subject": pat.subject,
            "identifiers": pat.identifiers,
            "event_time": _PLACEHOLDER_TIME,  # each message's own, set by person()
            "provenance": _PLACEHOLDER_PROVENANCE,
            "flags": tuple(flags),
            "family_name": family,
            "given_name": given,
            "middle_name": middle,
            "birth_date": born,
            "sex": tables.sex(pid.get(8)),
            "deceased_at": died,
            "address": _address(pid),
            "parties": _gp(pd1_4, d, facility),
        }
    )


def _gp(pd1_4: str, d: Delimiters, facility: str) -> tuple[Party, ...] | None:
    """PD1-4 (raw), the patient's regular GP (role ``gp``)."""
    if not pd1_4:
        return None
    found = (parties.xcn(rep, d, "gp", facility) for rep in pd1_4.split(d.repetition))
    return parties.unique([p for p in found if p is not None])


def has_demographics(pid: Segment) -> bool:
    """True when the PID states a name or a birth date (worth a Person version)."""
    return bool(pid.get(5) or pid.get(7))


#: HL7 table 0002 (marital status) -> the Person's marital_status
_MARITAL = {
    "S": "single",
    "M": "married",
    "D": "divorced",
    "W": "widowed",
    "A": "separated",
    "L": "separated",
    "C": "partner",
    "G": "partner",
    "P": "partner",
    "R": "partner",
    "E": "partner",
    "U": "unknown",
    "O": "other",
    "T": "unknown",
    "B": "single",
    "N": "annulled",
    "I": "interlocutory",
}


def telecom_of(raw: str, d: Delimiters) -> tuple[str, ...]:
    """The numbers and e-mail addresses of an XTN field (raw, every repetition): XTN-1, else XTN-4
    (e-mail), and XTN-5 to 7 (country, area, local number) with XTN-8 (extension) when they are not the
    same number."""
    out: list[str] = []
    for xtn in split_reps(raw, d):
        number = " ".join(x for x in (_p(xtn, 5), _p(xtn, 6), _p(xtn, 7)) if x)
        if number and _p(xtn, 8):
            number = f"{number} ext {_p(xtn, 8)}"
        written = _p(xtn, 1) or _p(xtn, 4)
        digits = "".join(ch for ch in written if ch.isdigit())
        # the structured number too when it is not the written one (both can be sent, and can differ)
        same = bool(written) and "".join(ch for ch in number if ch.isdigit()) in digits
        for text in (written, "" if same else number):
            if text and text not in out:
                out.append(text)
    return tuple(out)


def contact_details(pid: Segment) -> dict[str, Any]:
    """Person fields for PID-13/14 (telecom, home first), PID-15 (language) and PID-16 (marital status);
    empty when the PID has none (the Person then keeps its hash)."""
    if len(pid.fields) < 14:
        return {}
    return _contact_details(pid.raw(13), pid.raw(14), pid.get(15), pid.get(16), pid.d)


@lru_cache(maxsize=4096)
def _contact_details(pid13: str, pid14: str, pid15: str, pid16: str, d: Delimiters) -> dict[str, Any]:
    out: dict[str, Any] = {}
    telecom = telecom_of(pid13, d) + tuple(t for t in telecom_of(pid14, d) if t not in telecom_of(pid13, d))
    if telecom:
        out["telecom"] = telecom
    if pid15:
        out["language"] = pid15
    if pid16:
        out["marital_status"] = _MARITAL.get(pid16.upper(), "other")
    return out


def address_text(raw: str, d: Delimiters) -> str | None:
    """The address text of a raw XAD field (the home address among repetitions, else the first)."""
    return _address_of(raw, d)
