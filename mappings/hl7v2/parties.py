"""Practitioners and organisations in HL7 v2 fields -> :class:`engine.model.Party`.

* XCN (OBR-16, ORC-12, OBX-16, OBX-25, PD1-4, TXA-9): 1 id, 2 family, 3 given, 4 further given names,
  9 assigning authority (HD ``namespace&OID&type``), 13 identifier type. The id is an HPR number
  (system ``2.16.578.1.12.4.1.4.4``, leading zeros removed) when the authority's namespace or OID or
  the identifier type says HPR, a HER id when they say HER, else scoped to the authority's OID, else
  local to its namespace or the sending facility (``urn:enjournal:local:<scope>``).
* CNN (OBR-32.1, the sub-components of an NDL): the same items one level down.
* XON (ORC-21, OBX-23, PD1-3): 1 name, 10 organisation identifier (else 3), 6 assigning authority,
  7 identifier type.
* HD (MSH-4): 1 namespace as the name; 2 universal id (type 3: ``ISO`` -> an ``urn:oid:``, HER -> HER id).

Parsing is cached by the raw field text: the same GP or lab recurs in many messages (Party is frozen).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from engine import ids
from engine.model import Party, PartyId
from mappings.hl7v2 import tables
from mappings.hl7v2.message import Delimiters, Segment, split_value

_SYSTEMS = {"HPR": ids.OID_HPR, "HER": ids.OID_HER}


def _party_id(value: str, ns: str, oid: str, id_type: str, facility: str) -> PartyId:
    kind = tables.authority_kind(oid, ns, id_type)
    if kind is not None:
        return PartyId(system=_SYSTEMS[kind], value=(value.lstrip("0") or value) if kind == "HPR" else value)
    if oid and not oid.strip(".0123456789"):
        return PartyId(system=oid, value=value)
    return PartyId(system=ids.OID_LOCAL_PREFIX + (ns or facility), value=value)


def _name(*parts: str) -> str | None:
    return " ".join(p for p in parts if p) or None


def _practitioner(
    role: str, c: list[str], auth: tuple[str, str], id_type: str, facility: str, org: str | None
) -> Party | None:
    """``c``: id, family, given, further given names (already split); ``auth``: (namespace, OID)."""
    ident, family, given, middle = (c + ["", "", "", ""])[:4]
    name = _name(given, middle, family)
    if not ident and not name:
        return None
    pid = (_party_id(ident, auth[0], auth[1], id_type, facility),) if ident else ()
    return Party(role=role, kind="practitioner", name=name, ids=pid, organization=org)


def _c(parts: list[list[str]], i: int, s: int = 0) -> str:
    if i < len(parts) and s < len(parts[i]):
        return parts[i][s].strip()
    return ""


@lru_cache(maxsize=4096)
def xcn(raw: str, d: Delimiters, role: str, facility: str, org: str | None = None) -> Party | None:
    """One raw XCN repetition -> a practitioner Party (None when it names nobody)."""
    p = split_value(raw, d)
    comps = [_c(p, i) for i in range(4)]
    return _practitioner(role, comps, (_c(p, 8), _c(p, 8, 1)), _c(p, 12), facility, org)


@lru_cache(maxsize=4096)
def cnn(raw: str, d: Delimiters, role: str, facility: str) -> Party | None:
    """The CNN first component of a raw NDL (OBR-32) -> a practitioner Party."""
    first = split_value(raw, d)[0] if raw else [""]
    s = [x.strip() for x in first] + [""] * 11
    return _practitioner(role, s[:4], (s[8], s[9]), "", facility, None)


@lru_cache(maxsize=4096)
def xon(raw: str, d: Delimiters, role: str, facility: str) -> Party | None:
    """One raw XON repetition -> an organisation Party."""
    p = split_value(raw, d)
    name, ident = _c(p, 0), _c(p, 9) or _c(p, 2)
    if not name and not ident:
        return None
    pid = (_party_id(ident, _c(p, 5), _c(p, 5, 1), _c(p, 6), facility),) if ident else ()
    return Party(role=role, kind="organization", name=name or None, ids=pid)


@lru_cache(maxsize=1024)
def hd(raw: str, d: Delimiters, role: str) -> Party | None:
    """A raw HD (MSH-4 sending facility) -> an organisation Party."""
    p = split_value(raw, d)
    ns, uid, utype = _c(p, 0), _c(p, 1), _c(p, 2)
    if not ns and not uid:
        return None
    pid: tuple[PartyId, ...] = ()
    if uid:
        kind = tables.authority_kind(utype)
        if kind is not None:
            pid = (PartyId(system=_SYSTEMS[kind], value=uid),)
        elif utype.upper() == "ISO" and not uid.strip(".0123456789"):
            pid = (PartyId(system="urn:ietf:rfc:3986", value="urn:oid:" + uid),)
        else:
            pid = (PartyId(system=ids.OID_LOCAL_PREFIX + (utype or ns), value=uid),)
    return Party(role=role, kind="organization", name=ns or None, ids=pid)


Reader = Literal["xcn", "xon", "cnn"]


def of(seg: Segment | None, f: int, reader: Reader, role: str, facility: str) -> list[Party]:
    """Every Party in the repetitions of field ``f`` of ``seg`` (read as ``reader``)."""
    if seg is None:
        return []
    raw = seg.raw(f)
    if not raw:
        return []
    out: list[Party] = []
    for rep in raw.split(seg.d.repetition):
        if reader == "xcn":
            found = xcn(rep, seg.d, role, facility)
        elif reader == "xon":
            found = xon(rep, seg.d, role, facility)
        else:
            found = cnn(rep, seg.d, role, facility)
        if found is not None:
            out.append(found)
    return out


def unique(parties: list[Party]) -> tuple[Party, ...] | None:
    """``parties`` without repeats, or None when there are none (a record without parties keeps its hash)."""
    if len(parties) < 2:  # nothing to repeat: skip hashing the models
        return tuple(parties) or None
    return tuple(dict.fromkeys(parties))
