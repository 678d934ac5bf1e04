"""Optional XSD validation of received KITH / e-helse documents, offline.

* Schemas come from one folder (default: ``adapters/kith/schemas``, shipped with the package; see
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
  the first error's line, column and element path (local names). libxml2 quotes offending values in its
  messages (``'13116900216' is not a valid value``): those quotes are replaced by ``'…'``.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path, PurePosixPath

from lxml import etree

from engine.errors import ConfigError, ValidationError

DEFAULT_SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
_KEEP_QUOTED = re.compile(r"(?:Element|attribute|type|element)\s*$")
_QUOTED = re.compile(r"'[^']*'")
_CLARK = re.compile(r"\{[^}]*\}")
_STEP = re.compile(r"^\*(?:\[(\d+)\])?$")


class FolderResolver(etree.Resolver):  # type: ignore[misc]
    """Map any URL or relative path to ``<schema_dir>/<basename>``; never touch the network."""

    def __init__(self, schema_dir: Path) -> None:
        super().__init__()
        self.schema_dir = schema_dir

    def resolve(self, system_url: str | None, public_id: str | None, context: object) -> object:
        name = PurePosixPath((system_url or "").replace("\\", "/")).name
        target = self.schema_dir / name
        if name and target.is_file():
            return self.resolve_filename(str(target), context)
        return self.resolve_string("", context)  # unknown file: empty document, the compile fails


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
            errors = list(self._schema.error_log)
        first = errors[0] if errors else None
        if first is None:
            raise ValidationError("document does not validate", code="KITH_XSD_INVALID")
        where = f"line {first.line}, column {first.column}, at {element_path(element, first.path)}"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationError(f"{where}: {_clean(first.message)}{more}", code="KITH_XSD_INVALID")


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
            return "/".join(["", *names, *steps[len(names):]])
        node = children[idx - 1]
        names.append(etree.QName(node).localname)
    return "/" + "/".join(names)


def _clean(message: str) -> str:
    """Drop namespaces and replace quoted values (which may be patient data) by ``'…'``."""
    message = _CLARK.sub("", message.strip())
    out: list[str] = []
    pos = 0
    for m in _QUOTED.finditer(message):
        before = message[pos:m.start()]
        out.append(before)
        out.append(m.group(0) if _KEEP_QUOTED.search(before) else "'…'")
        pos = m.end()
    out.append(message[pos:])
    return "".join(out)
