"""Optional XSD validation of received KITH / e-helse documents, offline.

* Schemas come from one folder (default: ``adapters/kith_file/schemas``, shipped with the package; see
  ``SOURCES.tsv`` there). Every ``xs:import``/``xs:include`` is resolved **by file name** in that folder,
  whatever the ``schemaLocation`` says (absolute ``http://www.kith.no/...`` URLs, ``../../`` paths):
  nothing is ever fetched from the network.
* ``MsgHead`` v1.2 declares ``RefDoc/Content`` with ``processContents="strict"``, so a MsgHead only
  validates when the payload's schema is in the same schema set. :class:`SchemaSet` therefore builds one
  small wrapper schema in memory that imports MsgHead, AppRec and every payload schema in the folder
  (one namespace per file), and compiles it once; reuse the instance (compiling is the slow part).
* The schema is picked by the root's namespace: a namespace with no schema in the folder is reported by
  :meth:`SchemaSet.covers` so the caller can decide (the adapter skips validation for it).
* An invalid document raises :class:`engine.errors.ValidationError` with code ``KITH_XSD_INVALID`` and
  the first error's line, column, element path (local names), attribute, a short description of its
  libxml2 error type and that type's name (``line 8, column 0, at /Message/GenDate/@V: value not valid
  for its type [SCHEMAV_CVC_DATATYPE_VALID_1_2_3]``). libxml2's message text is never copied: it quotes
  the offending value, and a value with an apostrophe in it defeats any quote-stripping. Only XML names
  (attribute, expected elements, type, facet) are read out of it, each by a pattern that admits nothing
  but a name.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from lxml import etree

from engine.errors import ConfigError, ValidationError
from engine.redact import safe_reason

DEFAULT_SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_CLARK = re.compile(r"\{[^}]*\}")
_NAME = r"[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?"
#: XML names libxml2 puts in a validity message; each pattern admits a name and nothing else
_ATTRIBUTE = re.compile(rf"^Element '[^']*', attribute '({_NAME})': ")
_EXPECTED = re.compile(rf"Expected is (?:one of )?\( ((?:{_NAME})(?:, {_NAME})*) \)\.$")
_FACET = re.compile(rf"\[facet '({_NAME})'\]")
_TYPE = re.compile(rf" type '({_NAME})'\.$")
_MISSING_ATTRIBUTE = re.compile(rf"The attribute '({_NAME})' is required but missing\.$")
#: libxml2 schema-validity error types -> what the reason says (others are named by their type only)
DESCRIPTIONS = {
    "SCHEMAV_ELEMENT_CONTENT": "element not expected here, or a required child is missing",
    "SCHEMAV_CVC_DATATYPE_VALID_1_2_1": "value not valid for its type",
    "SCHEMAV_CVC_DATATYPE_VALID_1_2_2": "value not valid for its type",
    "SCHEMAV_CVC_DATATYPE_VALID_1_2_3": "value not valid for its type",
    "SCHEMAV_CVC_PATTERN_VALID": "value does not match the pattern",
    "SCHEMAV_CVC_ENUMERATION_VALID": "value not in the enumeration",
    "SCHEMAV_CVC_LENGTH_VALID": "value has the wrong length",
    "SCHEMAV_CVC_MINLENGTH_VALID": "value too short",
    "SCHEMAV_CVC_MAXLENGTH_VALID": "value too long",
    "SCHEMAV_CVC_MININCLUSIVE_VALID": "value too small",
    "SCHEMAV_CVC_MINEXCLUSIVE_VALID": "value too small",
    "SCHEMAV_CVC_MAXINCLUSIVE_VALID": "value too large",
    "SCHEMAV_CVC_MAXEXCLUSIVE_VALID": "value too large",
    "SCHEMAV_CVC_TOTALDIGITS_VALID": "value has too many digits",
    "SCHEMAV_CVC_FRACTIONDIGITS_VALID": "value has too many fraction digits",
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1": "attribute not allowed",
    "SCHEMAV_CVC_COMPLEX_TYPE_3_2_2": "attribute not allowed",
    "SCHEMAV_CVC_COMPLEX_TYPE_4": "required attribute missing",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_1": "element must be empty",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_3": "text not allowed in element-only content",
    "SCHEMAV_CVC_TYPE_3_1_2": "element content not allowed in an element of simple type",
    "SCHEMAV_CVC_ELT_1": "no declaration for this element",
    "SCHEMAV_CVC_ELT_4_2": "xsi:type names an unknown type",
    "SCHEMAV_CVC_ELT_4_3": "xsi:type is not derived from the declared type",
}
_STEP = re.compile(r"^\*(?:\[(\d+)\])?$")


class FolderResolver(etree.Resolver):
    """Map any URL or relative path to ``<schema_dir>/<basename>``; never touch the network."""

    def __init__(self, schema_dir: Path) -> None:
        super().__init__()
        self.schema_dir = schema_dir

    def resolve(self, system_url: str | None, public_id: str | None, context: object = None) -> object:
        name = PurePosixPath((system_url or "").replace("\\", "/")).name
        target = self.schema_dir / name
        if name and target.is_file():
            return self.resolve_filename(str(target), context)  # type: ignore[attr-defined]  # missing in lxml-stubs
        return self.resolve_string("", context, base_url=None)  # unknown file: empty document, the compile fails


def _schema_parser(schema_dir: Path) -> etree.XMLParser:
    parser = etree.XMLParser(no_network=True, load_dtd=False, resolve_entities=False)
    parser.resolvers.add(FolderResolver(schema_dir))
    return parser


def schema_namespaces(schema_dir: Path) -> dict[str, str]:
    """``targetNamespace`` -> file name for every ``*.xsd`` in ``schema_dir`` (first file wins)."""
    parser = _schema_parser(schema_dir)
    out: dict[str, str] = {}
    for f in sorted(schema_dir.glob("*.xsd")):
        try:
            root = etree.parse(str(f), parser).getroot()
        except etree.XMLSyntaxError:
            raise ConfigError(f"schema {f.name} is not well-formed XML") from None
        tns = root.get("targetNamespace")
        if tns and tns not in out:
            out[tns] = f.name
    return out


class SchemaSet:
    """All schemas of one folder compiled into one set; validate elements by their namespace."""

    def __init__(self, schema_dir: Path | None = None) -> None:
        self.schema_dir = (schema_dir or DEFAULT_SCHEMA_DIR).resolve()
        if not self.schema_dir.is_dir():
            raise ConfigError(f"XSD folder {self.schema_dir} does not exist")
        self.namespaces = schema_namespaces(self.schema_dir)
        self._schema = self._compile()
        self._lock = threading.Lock()

    def _compile(self) -> etree.XMLSchema:
        root = etree.Element(f"{{{XSD_NS}}}schema", nsmap={"xs": XSD_NS})
        for ns, file_name in self.namespaces.items():
            etree.SubElement(root, f"{{{XSD_NS}}}import", namespace=ns, schemaLocation=file_name)
        text = etree.tostring(root)
        base = str(self.schema_dir / "enjournal-wrapper.xsd")
        doc = etree.fromstring(text, _schema_parser(self.schema_dir), base_url=base)
        try:
            return etree.XMLSchema(doc.getroottree())
        except etree.XMLSchemaParseError as exc:
            raise ConfigError(f"XSD folder {self.schema_dir}: schemas do not compile ({_clean(str(exc))})") from None

    def covers(self, element: etree._Element) -> bool:
        """True when the folder has a schema for the element's namespace."""
        return etree.QName(element).namespace in self.namespaces

    def validate(self, element: etree._Element) -> None:
        """Validate ``element`` (a document root, or a MsgHead inside a wrapper) or raise ValidationError."""
        with self._lock:
            if self._schema.validate(element):
                return
            entries: Iterable[etree._LogEntry] = self._schema.error_log  # type: ignore[assignment]  # iterable (lxml-stubs)
            errors = list(entries)
        if not errors:
            raise ValidationError("document does not validate", code="KITH_XSD_INVALID")
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationError(describe(element, errors[0]) + more, code="KITH_XSD_INVALID")


def describe(element: etree._Element, error: etree._LogEntry) -> str:
    """A validity error as codes and positions: line, column, element path, attribute, what is wrong."""
    message = _CLARK.sub("", error.message or "")
    attribute = _ATTRIBUTE.match(message) or _MISSING_ATTRIBUTE.search(message)
    where = element_path(element, error.path) + (f"/@{attribute.group(1)}" if attribute else "")
    what = DESCRIPTIONS.get(error.type_name, "not valid")
    facet, typ, expected = _FACET.search(message), _TYPE.search(message), _EXPECTED.search(message)
    if facet:
        what += f" (facet {facet.group(1)})"
    elif typ and error.type_name.startswith("SCHEMAV_CVC_DATATYPE_VALID"):
        what += f" ({typ.group(1)})"
    if expected:
        what += f"; expected {expected.group(1)}"
    return safe_reason(f"line {error.line}, column {error.column}, at {where}: {what} [{error.type_name}]")


def element_path(element: etree._Element, xpath: str | None) -> str:
    """Turn libxml2's ``/*/*[4]`` (relative to the validated element) into ``/Message/MsgId``."""
    steps = [s for s in (xpath or "").split("/") if s]
    names: list[str] = [etree.QName(element).localname]
    if not steps:
        return "/" + names[0]
    node = element
    for step in steps[1:]:
        m = _STEP.match(step)
        children = [c for c in node if isinstance(c.tag, str)]
        idx = int(m.group(1) or 1) if m else 0
        if not m or idx > len(children):
            return "/".join(["", *names, *steps[len(names) :]])
        node = children[idx - 1]
        names.append(etree.QName(node).localname)
    return "/" + "/".join(names)


def _clean(message: str) -> str:
    """A schema compile error for the config error: namespaces dropped, then :func:`safe_reason`."""
    return safe_reason(_CLARK.sub("", message.strip()))
