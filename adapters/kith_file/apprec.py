"""AppRec 1.1 (Applikasjonskvittering, ``http://www.kith.no/xmlstds/apprec/2012-02-15``): build.

One receipt per received business message, written atomically (``.tmp`` + rename) to the adapter's
outbox as ``apprec-<original MsgId or file stem>-<apprec id>.xml``. Structure (AppRec-v1.1.xsd)::

    AppRec/MsgType V=APPREC, MIGversion "v1.1 2012-02-15", GenDate, Id (new GUID),
           Sender/HCP, Receiver/HCP  (swapped: our Sender = the original's Receiver),
           Status, Error*, OriginalMsgId/{MsgType, IssueDate, Id}

* ``Status`` (Volven 8258 "Status for mottak av melding"): ``1`` OK; ``2`` Avvist (the document was not
  accepted: not well-formed, DTD/entities, too large, XSD-invalid, unknown type); ``3`` OK, feil i
  delmelding: the document was accepted, but part of it was not. The adapter uses 3 when a MsgHead
  carries several documents and some of them are unsupported XML, or an attachment (``MsgType A``)
  that cannot be read (empty or invalid base64, or an external ``FileReference``) while at least one
  supported XML document is present. When no part is usable the status is 2.
* ``Error`` is a ``CV`` from Volven 8221 "Feilmelding for applikasjonskvittering" (``T01`` not
  well-formed, ``T02`` XSD-invalid, ``T10`` unsupported format, ``T99`` other format error, ``X99``
  other); ``OT`` names the failing part with codes and positions only, never patient data (it passes
  :func:`engine.redact.safe_reason` last).
* Parties: ``HCP/Inst/{Name, Id, TypeId, Dept*, HCPerson*}`` copied from the MsgHead's
  ``Organisation`` (sub-``Organisation`` -> ``Dept``, ``HealthcareProfessional`` -> ``HCPerson``), or from a
  standalone message's ``ServProvider``/``Requester`` ``HCP`` (same element names), or the adapter's
  configured identity. ``TypeId`` keeps ``V`` and ``DN`` (``kith:CS`` has no ``S``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum

from lxml import etree

from engine.ids import log_safe
from engine.redact import safe_reason

NS_APPREC = "http://www.kith.no/xmlstds/apprec/2012-02-15"
MIG_VERSION = "v1.1 2012-02-15"
OID_ERROR = "2.16.578.1.12.4.1.1.8221"
_XS_DATETIME = re.compile(r"^-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_XS_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

#: Volven 8221 codes used by the adapter, with their display names
ERROR_TEXT = {
    "T01": "Ikke XML / ikke 'well formed' / uleselig",
    "T02": "XML validerer ikke",
    "T10": "Støtter ikke meldingsformatet",
    "T99": "Annen feil på format",
    "X99": "Annen feil",
}


class Status(IntEnum):
    OK = 1
    REJECTED = 2
    PARTIAL = 3

    @property
    def display(self) -> str:
        return {1: "OK", 2: "Avvist", 3: "OK, feil i delmelding"}[self.value]


@dataclass(frozen=True)
class Unit:
    """An institution, department or person as AppRec names it (``Name``, ``Id``, ``TypeId``)."""

    name: str | None = None
    id: str | None = None
    id_type: str | None = None
    id_type_dn: str | None = None


@dataclass(frozen=True)
class Party:
    inst: Unit = field(default_factory=Unit)
    depts: tuple[Unit, ...] = ()
    persons: tuple[Unit, ...] = ()

    @property
    def empty(self) -> bool:
        return self.inst == Unit() and not self.depts and not self.persons


@dataclass(frozen=True)
class AppRecError:
    code: str  # Volven 8221 code (T01, T02, T10, T99, X99)
    detail: str  # which part failed and why: codes and positions only

    @property
    def display(self) -> str:
        return ERROR_TEXT.get(self.code, ERROR_TEXT["X99"])


@dataclass(frozen=True)
class Original:
    """The message being acknowledged."""

    msg_type: str  # MsgHead MsgInfo/Type/@V or Message/Type/@V ("UKJENT" when unreadable)
    id: str  # its MsgId (or the file stem when unreadable)
    issue_date: str  # xs:dateTime text
    msg_type_dn: str | None = None


def as_datetime(text: str | None, fallback: datetime) -> str:
    """A valid ``xs:dateTime`` from a KITH time (date, dateTime) or ``fallback``."""
    t = (text or "").strip()
    if _XS_DATETIME.match(t):
        return t
    if _XS_DATE.match(t):
        return f"{t}T00:00:00"
    return fallback.isoformat()


def build_apprec(
    *,
    status: Status,
    original: Original,
    sender: Party,
    receiver: Party,
    gen_date: datetime,
    errors: tuple[AppRecError, ...] = (),
    apprec_id: str | None = None,
) -> tuple[str, bytes]:
    """Return ``(apprec id, UTF-8 XML bytes)`` of one AppRec 1.1."""
    rid = apprec_id or log_safe(str(uuid.uuid4()))
    root = etree.Element(_q("AppRec"), nsmap={None: NS_APPREC})  # type: ignore[dict-item]  # None: default namespace
    _cs(root, "MsgType", "APPREC", "Applikasjonskvittering")
    _text(root, "MIGversion", MIG_VERSION)
    _text(root, "GenDate", gen_date.isoformat())
    _text(root, "Id", rid)
    _party(root, "Sender", sender)
    _party(root, "Receiver", receiver)
    _cs(root, "Status", str(int(status)), status.display)
    for err in errors:
        etree.SubElement(root, _q("Error"), V=err.code, S=OID_ERROR, DN=err.display, OT=safe_reason(err.detail)[:1000])
    orig = etree.SubElement(root, _q("OriginalMsgId"))
    _cs(orig, "MsgType", original.msg_type, original.msg_type_dn)
    _text(orig, "IssueDate", original.issue_date)
    _text(orig, "Id", original.id)
    return rid, etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def receipt_name(original_id: str, apprec_id: str) -> str:
    safe = _SAFE_NAME.sub("_", original_id).strip("._") or "unknown"
    return f"apprec-{safe[:100]}-{apprec_id}.xml"


def _q(name: str) -> str:
    return f"{{{NS_APPREC}}}{name}"


def _text(parent: etree._Element, name: str, value: str | None) -> None:
    etree.SubElement(parent, _q(name)).text = value or ""


def _cs(parent: etree._Element, name: str, v: str | None, dn: str | None = None) -> None:
    el = etree.SubElement(parent, _q(name))
    if v:
        el.set("V", v)
    if dn:
        el.set("DN", dn)


def _party(parent: etree._Element, name: str, party: Party) -> None:
    hcp = etree.SubElement(etree.SubElement(parent, _q(name)), _q("HCP"))
    inst = etree.SubElement(hcp, _q("Inst"))
    _unit_fields(inst, party.inst)
    for dept in party.depts:
        _unit_fields(etree.SubElement(inst, _q("Dept")), dept)
    for person in party.persons:
        _unit_fields(etree.SubElement(inst, _q("HCPerson")), person)


def _unit_fields(el: etree._Element, unit: Unit) -> None:
    if unit.name:
        _text(el, "Name", unit.name)
    if unit.id:
        _text(el, "Id", unit.id)
        _cs(el, "TypeId", unit.id_type, unit.id_type_dn)
