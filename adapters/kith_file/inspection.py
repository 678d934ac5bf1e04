"""Adapter-side checks of a received KITH / e-helse XML document (the KITH file adapter's helpers).

:func:`inspect` reads only what the adapter needs to answer the sender with an AppRec; mapping happens
in the worker. It is pure (no I/O, no clock) and never raises for bad input: the verdict is data.

Checks, in order (the first failure rejects the document, AppRec status 2):

1. hardened parse (:func:`mappings.kith.xml.parse_document`): size limit, no DTD/entities, well-formed;
   ISO-8859-1 / UTF-8 with or without BOM or declaration; bytes that do not fit the declared charset
   (UTF-8 declared ISO-8859-1, Windows-1252 declared ISO-8859-1 or UTF-8) are read with the charset
   that fits and the document is accepted, with ``Inspection.charset_repaired`` = ``<declared>-><used>``
   (the adapter's envelope attribute ``charset_repaired``; the mapping reads the same letters);
2. a shape we recognise (:func:`mappings.kith.xml.unwrap`): a standalone ``Message`` (Svarrapport 1.2-1.4,
   Rekvisisjon 1.5/1.6, Epikrise 1.0-1.2, Henvisning 1.0/1.1), a ``MsgHead`` v1.2, or a MsgHead inside a
   receiver's wrapper (NAV ``EI_fellesformat``), of a family the engine knows (the table it shares with the
   mapping: :mod:`mappings.kith.families`); a received ``AppRec`` is recognised as a receipt (it is
   published but never answered with an AppRec);
3. optional XSD validation of the MsgHead (or the standalone root), see :mod:`adapters.kith_file.xsd`;
4. the parts of a MsgHead: each ``Document/RefDoc`` holds a supported XML payload, a readable base64
   attachment, or is reported as a failed part (AppRec status 3; status 2 when no XML payload is usable).

Reject codes (``Inspection.rejection``; ``Inspection.reject`` = ``CODE: text``; the AppRec error code from
Volven 8221 in brackets):
``KITH_EMPTY``/``KITH_NOT_WELL_FORMED`` [T01], ``KITH_DTD_FORBIDDEN``/``KITH_TOO_LARGE`` [T99],
``KITH_UNSUPPORTED_TYPE`` [T10], ``KITH_XSD_INVALID`` [T02], ``KITH_NO_PAYLOAD`` [T99]; anything else [X99].

Fields read: MsgHead ``MsgInfo/{Type, GenDate, MsgId, Sender, Receiver}``; standalone ``Message/{Type,
GenDate/@V, MsgId}`` and ``ServProvider``/``Requester`` of its ``ServReport``/``ServRprt``/``ServReq``.
Reasons carry codes, positions and namespaces, never content.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field, replace

from lxml import etree

from adapters.kith_file.apprec import AppRecError, Party, Unit
from adapters.kith_file.xsd import SchemaSet
from engine.errors import EnjournalError, ParseError
from engine.rejection import Rejection
from mappings.kith.families import APPREC, family_of
from mappings.kith.xml import NS_MSGHEAD, first_child, local, parse_document, tag_name, unwrap

_REQUEST_FAMILIES = {"henvisning", "rekvisisjon"}  # sender = Requester, receiver = ServProvider
_MSGID_RE = re.compile(rb"<(?:\w+:)?MsgId>\s*([A-Za-z0-9._:-]{1,100})\s*</")
#: ParseError / ValidationError code -> Volven 8221 AppRec error code
APPREC_CODES = {
    "KITH_NOT_WELL_FORMED": "T01",
    "KITH_EMPTY": "T01",
    "KITH_XSD_INVALID": "T02",
    "KITH_UNSUPPORTED_TYPE": "T10",
    "KITH_NO_PAYLOAD": "T99",
    "KITH_TOO_LARGE": "T99",
    "KITH_DTD_FORBIDDEN": "T99",
}


def family(element: etree._Element) -> str | None:
    """The message family of a document or payload element (:func:`mappings.kith.families.family_of`: by
    its namespace, a receipt also by its root element), or None when the engine does not know it."""
    found = family_of(etree.QName(element).namespace, local(element))
    return found.name if found is not None else None


@dataclass(frozen=True)
class Inspection:
    """What the adapter learned about one document (everything optional: a reject may know nothing)."""

    shape: str = "unknown"  # standalone | msghead | wrapped | unknown
    family: str | None = None
    msg_type: str | None = None
    msg_type_dn: str | None = None
    msg_id: str | None = None
    issue_date: str | None = None
    sender: Party = field(default_factory=Party)  # of the original message
    receiver: Party = field(default_factory=Party)
    reject_code: str | None = None  # KITH_* reason code; None = accepted
    reject_text: str = ""
    part_errors: tuple[AppRecError, ...] = ()  # accepted, but these parts failed (status 3)
    xsd: str = "off"  # off | valid | invalid | no-schema
    charset_repaired: str | None = None  # "<declared>-><used>" when the bytes did not fit the declaration

    @property
    def reject(self) -> str | None:
        """``CODE: text``, as the ``.reason`` file and the AppRec say it (None: accepted)."""
        return f"{self.reject_code}: {self.reject_text}" if self.reject_code else None

    @property
    def rejection(self) -> Rejection | None:
        """The envelope's rejection (None: accepted)."""
        return Rejection(code=self.reject_code, text=self.reject_text) if self.reject_code else None

    @property
    def is_receipt(self) -> bool:
        return self.family == APPREC.name

    def apprec_errors(self) -> tuple[AppRecError, ...]:
        if self.reject_code:
            return (AppRecError(APPREC_CODES.get(self.reject_code, "X99"), self.reject or ""),)
        return self.part_errors


def inspect(raw: bytes, *, max_bytes: int, schemas: SchemaSet | None = None) -> Inspection:
    """Run the adapter-side checks on ``raw``; never raises for bad input."""
    try:
        parsed = parse_document(raw, max_bytes=max_bytes)
    except ParseError as exc:
        m = _MSGID_RE.search(raw[:65536])
        return Inspection(msg_id=m.group(1).decode() if m else None, reject_code=exc.code, reject_text=_msg(exc))
    root = parsed.root
    doc = unwrap(root)
    head = _msghead_info(doc.msghead) if doc.msghead is not None else _standalone_info(root)
    info = replace(head, shape=doc.shape, charset_repaired=parsed.charset_repaired)
    if info.family is None:
        ns = etree.QName(root).namespace or "no namespace"
        return replace(info, reject_code="KITH_UNSUPPORTED_TYPE", reject_text=f"unknown document {local(root)} ({ns})")
    target = doc.msghead if doc.msghead is not None else root
    if schemas is not None:
        info = _validate(info, target, schemas)
        if info.reject_code:
            return info
    return info if doc.msghead is None else _check_parts(doc.msghead, info)


def _validate(info: Inspection, target: etree._Element, schemas: SchemaSet) -> Inspection:
    if not schemas.covers(target):
        return replace(info, xsd="no-schema")
    try:
        schemas.validate(target)
    except EnjournalError as exc:
        return replace(info, xsd="invalid", reject_code=exc.code, reject_text=_msg(exc))
    return replace(info, xsd="valid")


def _msg(exc: EnjournalError) -> str:
    text = str(exc)
    return "" if text == exc.code else text


def _check_parts(msghead: etree._Element, info: Inspection) -> Inspection:
    errors: list[AppRecError] = []
    usable = 0
    for i, refdoc in enumerate(msghead.iterfind(f"{{{NS_MSGHEAD}}}Document/{{{NS_MSGHEAD}}}RefDoc"), start=1):
        problem = _part_problem(refdoc, f"Document[{i}]")
        if problem is None:
            usable += _has_xml(refdoc)
        else:
            errors.append(problem)
    if usable == 0:
        code = "KITH_UNSUPPORTED_TYPE" if any(e.code == "T10" for e in errors) else "KITH_NO_PAYLOAD"
        detail = "; ".join(e.detail for e in errors) or "no Document/RefDoc"
        return replace(info, reject_code=code, reject_text=f"no supported XML document ({detail})")
    return replace(info, part_errors=tuple(errors))


def _part_problem(refdoc: etree._Element, where: str) -> AppRecError | None:
    content = refdoc.find(f"{{{NS_MSGHEAD}}}Content")
    if content is None:
        kind = "FileReference" if refdoc.find(f"{{{NS_MSGHEAD}}}FileReference") is not None else "no Content"
        return AppRecError("T99", f"{where}: {kind} cannot be read")
    children = [c for c in content if isinstance(c.tag, str)]
    if not children:
        return AppRecError("T99", f"{where}: empty Content")
    for child in children:
        if local(child) == "Base64Container":
            if not _base64_ok(child.text or ""):
                return AppRecError("T99", f"{where}: attachment is not readable base64")
        elif family(child) in (None, APPREC.name):
            ns = etree.QName(child).namespace or "no namespace"
            return AppRecError("T10", f"{where}: unsupported document {local(child)} ({ns})")
    return None


def _has_xml(refdoc: etree._Element) -> int:
    content = refdoc.find(f"{{{NS_MSGHEAD}}}Content")
    children = content if content is not None else ()
    return int(any(isinstance(c.tag, str) and local(c) != "Base64Container" for c in children))


def _base64_ok(text: str) -> bool:
    compact = "".join(text.split())
    if not compact:
        return False
    try:
        base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _msghead_info(msghead: etree._Element) -> Inspection:
    mi = _child(msghead, "MsgInfo")
    typ = _child(mi, "Type")
    return Inspection(
        family="msghead",
        msg_type=_attr(typ, "V"),
        msg_type_dn=_attr(typ, "DN"),
        msg_id=_text(_child(mi, "MsgId")),
        issue_date=_text(_child(mi, "GenDate")),
        sender=_organisation(_child(_child(mi, "Sender"), "Organisation")),
        receiver=_organisation(_child(_child(mi, "Receiver"), "Organisation")),
    )


def _standalone_info(root: etree._Element) -> Inspection:
    fam = family(root)
    typ = _child(root, "Type")
    body = next((c for c in root if isinstance(c.tag, str) and local(c) in ("ServReport", "ServRprt", "ServReq")), None)
    provider = _hcp(_child(_child(body, "ServProvider"), "HCP"))
    requester = _hcp(_child(_child(body, "Requester"), "HCP"))
    sender, receiver = (requester, provider) if fam in _REQUEST_FAMILIES else (provider, requester)
    return Inspection(
        family=fam,
        msg_type=_attr(typ, "V") or ("APPREC" if fam == APPREC.name else None),
        msg_type_dn=_attr(typ, "DN"),
        msg_id=_text(_child(root, "MsgId")) or _text(_child(root, "Id")),
        issue_date=_attr(_child(root, "GenDate"), "V") or _text(_child(root, "GenDate")),
        sender=sender,
        receiver=receiver,
    )


def _organisation(org: etree._Element | None) -> Party:
    """MsgHead ``Organisation`` -> Party: sub-organisations become departments, professionals persons."""
    if org is None:
        return Party()
    depts: list[Unit] = []
    persons = [_professional(p) for p in _children(org, "HealthcareProfessional")]
    sub = _child(org, "Organisation")
    while sub is not None:
        depts.append(_ident_unit(sub, _text(_child(sub, "OrganisationName"))))
        persons += [_professional(p) for p in _children(sub, "HealthcareProfessional")]
        sub = _child(sub, "Organisation")
    return Party(_ident_unit(org, _text(_child(org, "OrganisationName"))), tuple(depts), tuple(persons))


def _professional(hp: etree._Element) -> Unit:
    parts = [_text(_child(hp, n)) for n in ("GivenName", "MiddleName", "FamilyName")]
    return _ident_unit(hp, " ".join(p for p in parts if p) or None)


def _ident_unit(el: etree._Element, name: str | None) -> Unit:
    """Name + the preferred ``Ident`` (HER first, then ENH, then the first one)."""
    idents = [(_text(_child(i, "Id")), _child(i, "TypeId")) for i in _children(el, "Ident")]
    idents = [(v, t) for v, t in idents if v]
    ranked = sorted(idents, key=lambda it: {"HER": 0, "ENH": 1}.get(_attr(it[1], "V") or "", 2))
    if not ranked:
        return Unit(name=name)
    value, typ = ranked[0]
    return Unit(name=name, id=value, id_type=_attr(typ, "V"), id_type_dn=_attr(typ, "DN"))


def _hcp(hcp: etree._Element | None) -> Party:
    """Standalone ``HCP/Inst`` (or ``HCP/HCProf``) -> Party."""
    inst, prof = _child(hcp, "Inst"), _child(hcp, "HCProf")
    if inst is not None:
        return Party(
            _flat_unit(inst),
            tuple(_flat_unit(d) for d in _children(inst, "Dept")),
            tuple(_flat_unit(p) for p in _children(inst, "HCPerson")),
        )
    return Party(persons=(_flat_unit(prof),)) if prof is not None else Party()


def _flat_unit(el: etree._Element) -> Unit:
    typ = _child(el, "TypeId")
    return Unit(_text(_child(el, "Name")), _text(_child(el, "Id")), _attr(typ, "V"), _attr(typ, "DN"))


def _child(el: etree._Element | None, name: str) -> etree._Element | None:
    return None if el is None else first_child(el, name)


def _children(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if el is None else [c for c in el if tag_name(c.tag) == name]


def _text(el: etree._Element | None) -> str | None:
    t = (el.text or "").strip() if el is not None else ""
    return t or None


def _attr(el: etree._Element | None, name: str) -> str | None:
    v = (el.get(name) or "").strip() if el is not None else ""
    return v or None
