"""Coverage support of the KITH mapping (:mod:`engine.coverage`): the leaves of a document and what the
mapping declares.

Leaves: every element with non-whitespace text (its own text and the text between its children) and every
attribute but the XML Schema instance ones (``xsi:schemaLocation``; namespace declarations are not
attributes), at the path of local names from the root without indexes, an attribute as ``@name``:
``MsgHead/MsgInfo/Type/@V``. A payload carried in ``MsgHead/Document/RefDoc/Content`` starts a path of its
own (``Message/ServReport/ResultItem/Analysed/@V``), so one declaration serves the standalone and the
MsgHead shapes.

:data:`MAPPED` lists the paths whose values the mapping transforms; :data:`IGNORED` the transport and
schema paths, each with its reason. ``*/tail`` matches ``tail`` at any depth.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from engine.coverage import Declarations
from engine.model import MapContext
from mappings.kith.xml import DEFAULT_MAX_BYTES, local, parse_xml, tag_name

__all__ = ["IGNORED", "MAPPED", "declarations", "leaves"]

_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"

#: paths whose values the mapping reads and re-expresses (so their text is not in the result)
MAPPED: dict[str, str] = {
    "Message/ServReport/ServType/@V": "report service type: the record status (mappings.kith.status)",
    "Message/ServReport/Status/@V": "report status: the record status (mappings.kith.status)",
    "*/ResultItem/ServType/@V": "item service type: the record status (mappings.kith.status)",
    "*/ResultItem/StatusInvestigation/@V": "investigation status: the record status (mappings.kith.status)",
    "Message/ServRprt/ServType/@V": "report service type: the record status",
    "Message/ServRprt/Status/@V": "report status: the record status",
    "Henvisning/ServType/@V": "service type: the record status",
    "Message/ServReq/ServType/@V": "service type: the record status",
    "*/Patient/Sex/@V": "sex code (male/female/unknown)",
}

# Svarrapport / Rekvisisjon: values the result mapping reads and re-expresses (mappings.kith.svarrapport, order)
MAPPED.update(
    {
        "*/ResultItem/IdResultItem": "result item id: normalised into the observation's key (svarrapport._item_key)",
        "*/ResultItem/RefAnalysedSubject": "the item's sample reference: resolved to the observation's specimen "
        "and specimen_key (svarrapport._sample_of)",
        "*/AnalysedSubject/IdByServProvider": "the lab's sample id: the Specimen's sample_id and key",
        "*/ResultItem/DevResultInd/@V": "deviation indicator: mapped to the abnormal flag H/L/A",
        "*/ResultItem/NumResult/NumResultValue/@U": "unit: normalised (units.normalise_unit) into the unit",
    }
)

#: transport and schema paths: how the document travelled and which schema it follows, not its content
IGNORED: dict[str, str] = {
    "MsgHead/MsgInfo/Type/*": "message type of the transport head (the payload's own type is read)",
    "MsgHead/MsgInfo/MIGversion": "version of the head's implementation guide: schema",
    "MsgHead/MsgInfo/GenDate": "time the transport head was generated",
    "MsgHead/MsgInfo/MsgId": "transport id of the head (acknowledged by the AppRec)",
    "MsgHead/MsgInfo/Ack/*": "acknowledgement request: transport",
    "MsgHead/Document/RefDoc/MsgType/@V": "payload kind in the transport head (the payload itself is read)",
    "MsgHead/Document/RefDoc/MsgType/@DN": "payload kind in the transport head (the payload itself is read)",
    "MsgHead/Document/RefDoc/MimeType": "payload content type in the transport head",
    "MsgHead/Document/DocumentConnection/*": "transport link between head documents",
    "*/MIGversion": "version of the message implementation guide: schema",
    "MsgHead/Document/RefDoc/IssueDate/@V": "issue date in the transport head's document reference (the "
    "payload's own dates are read)",
}
# the code list's label of a code whose value (@V) is mapped to a status or a sex: not the sender's text
_LABEL = "label of a code list value whose @V is mapped (to a status or a sex), not the sender's own text"
IGNORED.update({p.removesuffix("@V") + "@DN": _LABEL for p in MAPPED if p.endswith("@V")})


def declarations(ctx: MapContext) -> Declarations:
    """The KITH declarations (the same for every context)."""
    return _DECLARATIONS


_DECLARATIONS = Declarations(mapped=MAPPED, ignored=IGNORED)


def leaves(raw: bytes, ctx: MapContext) -> Iterator[tuple[str, str]]:
    """Every non-empty (path, value) of the document ``raw``, in document order."""
    root = parse_xml(raw, max_bytes=int(ctx.options.get("max_bytes", DEFAULT_MAX_BYTES)))
    yield from _element(root, local(root))


def _element(el: etree._Element, path: str) -> Iterator[tuple[str, str]]:
    for key, value in el.attrib.items():
        attr, text = str(key), str(value)
        if not attr.startswith(_XSI) and text.strip():
            yield f"{path}/@{attr[attr.find('}') + 1 :]}", text
    own = "".join([el.text or "", *(child.tail or "" for child in el)])
    if own.strip():
        yield path, own
    payload_parent = path.endswith("MsgHead/Document/RefDoc/Content")
    for child in el:
        name = tag_name(child.tag)
        if name is None:
            continue  # a comment or processing instruction
        restart = payload_parent and name != "Base64Container"
        yield from _element(child, name if restart else f"{path}/{name}")
