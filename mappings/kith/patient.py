"""Patient identity in KITH messages: identifiers, the subject, the Person record and identity links.

Where the patient is:

* MsgHead v1.2 ``MsgInfo/Patient/{FamilyName, MiddleName, GivenName, DateOfBirth, Sex/@V, Ident/{Id, TypeId/@V},
  Address}`` (``DateOfBirth`` is element text here);
* the v1.x "basis" messages (Svarrapport, Epikrise, Henvisning 1.1, Rekvisisjon) ``Patient/{Name ("Etternavn,
  Fornavn Mellomnavn": the first word after the comma is the given name, the rest the middle name), OffId,
  TypeOffId/@V, DateOfBirth/@V, Sex/@V, IdByServProvider, Address}``.

``TypeId``/``TypeOffId`` (8116): FNR, DNR, HNR, FHN go through :func:`engine.model.national_identifier`
(an H-number, and an invalid number, is scoped to the sender organisation, e.g. ``HER:59``; invalid numbers
stay, flagged). Other types become local identifiers scoped to the sender. The lab's own patient id
(``IdByServProvider``) is a local identifier of that lab or hospital. A birth date that contradicts the number flags the
Person ``BIRTHDATE_MISMATCH`` and the number's date wins. Sex (3101): 1 male, 2 female, 9 other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache

from engine import ids
from engine.errors import MappingError
from engine.model import Identifier, IdentityLink, Party, Person, Provenance, link_all, national_identifier
from mappings.kith import common as c
from mappings.kith.node import Node

_NATIONAL = frozenset({"FNR", "DNR", "HNR", "FHN"})
_RANK = {"FNR": 0, "DNR": 1, "FHN": 2, "HNR": 3, "LOCAL": 4, "OTHER": 5}
_SEX = {"1": "male", "2": "female", "9": "other", "0": "unknown", "M": "male", "K": "female", "F": "female"}


@dataclass
class PatientInfo:
    """What one part of a message says about the patient (values only; no records yet)."""

    idents: list[tuple[str, str | None]] = field(default_factory=list)  # (number, declared type)
    local_ids: list[tuple[str, str]] = field(default_factory=list)  # (value, scope)
    family_name: str | None = None
    given_name: str | None = None
    middle_name: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    address: str | None = None
    deceased: str | None = None  # ``DateOfDeath/@V`` as written (a date or a date and time)


@dataclass(frozen=True)
class Identity:
    """What a message's identifiers settle, whatever else it says: memoised, as senders repeat patients."""

    subject: Identifier
    identifiers: tuple[Identifier, ...]
    links: tuple[IdentityLink, ...]
    number_birth_date: date | None
    person_key: str


@dataclass(frozen=True)
class Subject:
    """The patient of a message: best identifier first, all identifiers, and the merged facts."""

    subject: Identifier
    identifiers: tuple[Identifier, ...]
    info: PatientInfo
    scope: str
    identity: Identity


def from_msghead(msghead: Node | None) -> PatientInfo | None:
    """``MsgInfo/Patient`` of a MsgHead, or None."""
    pat = c.find(msghead, "MsgInfo/Patient")
    if pat is None:
        return None
    info = PatientInfo(
        family_name=c.text(pat, "FamilyName"),
        given_name=c.text(pat, "GivenName"),
        middle_name=c.text(pat, "MiddleName"),
        birth_date=c.parse_date(c.text(pat, "DateOfBirth")),
        sex=_SEX.get(c.attr(pat, "Sex") or ""),
        address=_address(c.find(pat, "Address")),
    )
    for ident in c.findall(pat, "Ident"):
        value = c.text(ident, "Id")
        if value:
            info.idents.append((value, c.attr(ident, "TypeId")))
    return info


def from_message(pat: Node | None, lab_scope: str | None = None) -> PatientInfo | None:
    """A v1.x ``Patient`` element (Svarrapport, Epikrise, Henvisning 1.1, Rekvisisjon), or None."""
    if pat is None:
        return None
    family, given, middle = split_name(c.text(pat, "Name"))
    info = PatientInfo(
        family_name=family,
        given_name=given,
        middle_name=middle,
        birth_date=c.parse_date(c.attr(pat, "DateOfBirth")),
        sex=_SEX.get(c.attr(pat, "Sex") or ""),
        address=_address(c.find(pat, "Address")),
        deceased=c.attr(pat, "DateOfDeath"),
    )
    off_id = c.text(pat, "OffId")
    if off_id:
        info.idents.append((off_id, c.attr(pat, "TypeOffId")))
    local_id = c.text(pat, "IdByServProvider")
    if local_id and lab_scope:
        info.local_ids.append((local_id, lab_scope))
    return info


@lru_cache(maxsize=4096)
def split_name(name: str | None) -> tuple[str | None, str | None, str | None]:
    """``"Etternavn, Fornavn Mellomnavn"`` -> (family, given, middle); a name with no comma is all family name."""
    if not name:
        return None, None, None
    family, sep, rest = name.partition(",")
    given, _, middle = rest.strip().partition(" ") if sep else ("", "", "")
    return family.strip() or None, given or None, middle.strip() or None


def _address(el: Node | None) -> str | None:
    if el is None:
        return None
    street, postal, city = (c.text(el, n) for n in ("StreetAdr", "PostalCode", "City"))
    return c.join(street, c.join(postal, city, sep=" "))


@lru_cache(maxsize=8192)
def identifier(value: str, declared: str | None, scope: str) -> Identifier:
    """One patient identifier as declared by the sender (``S`` on TypeId is advisory, never checked).

    Memoised: a pure function of its arguments returning an immutable model (mod-11 checks cost).
    """
    declared = (declared or "").upper() or None
    if declared is None or declared in _NATIONAL:
        return national_identifier(value, declared=declared, hnr_scope=scope)
    if declared == "DUF":
        return Identifier(system=ids.OID_DUF, value=value.strip(), kind="OTHER")
    return Identifier(system=f"{ids.OID_LOCAL_PREFIX}{scope}:{declared}", value=value.strip(), kind="LOCAL")


def resolve(parts: list[PatientInfo | None], scope: str) -> Subject:
    """Merge what the message parts say into one :class:`Subject`; ``KITH_NO_PATIENT`` when none."""
    infos = [p for p in parts if p is not None]
    declared: list[tuple[bool, str, str | None]] = []
    for info in infos:
        declared += [(True, v, t) for v, t in info.idents]
        declared += [(False, v, s) for v, s in info.local_ids]
    identity = _identity(tuple(declared), scope)
    if identity is None:
        raise MappingError("the message names no patient identifier", code="KITH_NO_PATIENT")
    return Subject(
        subject=identity.subject, identifiers=identity.identifiers, info=_merge(infos), scope=scope, identity=identity
    )


@lru_cache(maxsize=8192)
def _identity(declared: tuple[tuple[bool, str, str | None], ...], scope: str) -> Identity | None:
    """The identifiers (``(national?, value, declared type or local scope)``, in message order) resolved once.

    Memoised: a pure function of its arguments returning immutable values (validation and hashing cost).
    """
    found = [
        identifier(v, t, scope)
        if national
        else Identifier(system=ids.OID_LOCAL_PREFIX + (t or ""), value=v, kind="LOCAL")
        for national, v, t in declared
    ]
    identifiers = tuple(dict.fromkeys(found))
    if not identifiers:
        return None
    best = min(identifiers, key=lambda i: (_RANK[i.kind], "INVALID_NUMBER" in i.flags))
    return Identity(
        subject=best,
        identifiers=identifiers,
        links=link_all(identifiers) if len(identifiers) > 1 else (),
        number_birth_date=_number_birth_date(identifiers),
        person_key=_person_key(scope, best),
    )


def _merge(infos: list[PatientInfo]) -> PatientInfo:
    merged = PatientInfo()
    for info in infos:
        for name in ("family_name", "given_name", "middle_name", "birth_date", "sex", "address", "deceased"):
            if getattr(merged, name) is None:
                setattr(merged, name, getattr(info, name))
    return merged


def person(
    subj: Subject,
    event_time: datetime,
    prov: Provenance,
    deceased: tuple[datetime | None, date | None] = (None, None),
    parties: tuple[Party, ...] | None = None,
) -> Person:
    """The patient as this sender describes them in this message (key: sender + hashed subject); ``deceased``
    is a death the message reports elsewhere (time, or date alone); ``parties`` are the message's."""
    info = subj.info
    number_date = subj.identity.number_birth_date
    flags: tuple[str, ...] = ()
    if number_date is not None and info.birth_date is not None and number_date != info.birth_date:
        flags = ("BIRTHDATE_MISMATCH",)
    return Person(
        key=subj.identity.person_key,
        subject=subj.subject,
        event_time=event_time,
        provenance=prov,
        flags=flags,
        identifiers=subj.identifiers,
        family_name=info.family_name,
        given_name=info.given_name,
        middle_name=info.middle_name,
        birth_date=number_date or info.birth_date,
        sex=info.sex,
        deceased_at=deceased[0] or _time_of(info.deceased),
        deceased_date=deceased[1] or _date_of(info.deceased),
        address=info.address,
        parties=parties or None,
    )


def _time_of(value: str | None) -> datetime | None:
    """A date and time; None for a date alone (that is :func:`_date_of`'s)."""
    return c.parse_time(value) if value and len(value.strip()) > 10 else None


def _date_of(value: str | None) -> date | None:
    return c.parse_date(value) if value and len(value.strip()) <= 10 else None


def person_key(subj: Subject) -> str:
    """``person:<sender scope>:<hash of the subject identifier>`` (no number in a key, keys reach logs)."""
    return subj.identity.person_key


def _person_key(scope: str, subject: Identifier) -> str:
    digest = hashlib.blake2b(subject.key.encode(), digest_size=8).hexdigest()
    return f"person:kith:{scope}:{digest}"


def _number_birth_date(identifiers: tuple[Identifier, ...]) -> date | None:
    for ident in identifiers:
        if ident.kind in ("FNR", "DNR") and "INVALID_NUMBER" not in ident.flags:
            return ids.birth_date(ident.value)
    return None


def links(subj: Subject) -> tuple[IdentityLink, ...]:
    return subj.identity.links
