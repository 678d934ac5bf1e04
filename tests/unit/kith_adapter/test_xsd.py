"""XSD validation: offline resolution, every corpus file, reasons without values."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from adapters.kith_file.xsd import DEFAULT_SCHEMA_DIR, FolderResolver, SchemaSet, element_path, schema_namespaces
from engine.errors import ConfigError, ValidationError
from mappings.kith.xml import parse_xml, unwrap
from tests.unit.kith_adapter.conftest import MSGHEAD, STANDALONE, corpus_files, wrap_in_fellesformat

NS_SVAR14 = "http://www.kith.no/xmlstds/labsvar/2012-02-15"


def _target(raw: bytes) -> etree._Element:
    doc = unwrap(parse_xml(raw))
    return doc.msghead if doc.msghead is not None else doc.root


@pytest.mark.skipif(not corpus_files(), reason="shared corpus not present")
@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_every_corpus_file_validates_or_gives_a_reason(schemas: SchemaSet, path: Path) -> None:
    # Result at the time of writing: all 23 SAREPTA samples validate (MsgHead ones only because the payload
    # schemas are in the same set; see the module docstring). A failure must still be a coded reason.
    target = _target(path.read_bytes())
    assert schemas.covers(target)
    try:
        schemas.validate(target)
    except ValidationError as exc:
        assert exc.code == "KITH_XSD_INVALID" and "line " in str(exc)
        pytest.fail(f"{path.name} no longer validates: {exc.reason}")


def test_packaged_schemas_cover_the_message_namespaces() -> None:
    ns = schema_namespaces(DEFAULT_SCHEMA_DIR)
    assert ns["http://www.kith.no/xmlstds/msghead/2006-05-24"] == "MsgHead-v1_2.xsd"
    assert ns["http://www.kith.no/xmlstds/apprec/2012-02-15"] == "AppRec-v1.1.xsd"
    assert ns[NS_SVAR14] == "svar-v1.4.xsd"
    assert (DEFAULT_SCHEMA_DIR / "SOURCES.tsv").is_file()


def test_msghead_and_its_payload_validate_together(schemas: SchemaSet) -> None:
    schemas.validate(_target(MSGHEAD.read_bytes()))


def test_wrapped_msghead_is_validated_without_the_wrapper(schemas: SchemaSet) -> None:
    schemas.validate(_target(wrap_in_fellesformat(MSGHEAD.read_bytes())))


def test_invalid_document_names_line_and_path_but_no_value(schemas: SchemaSet) -> None:
    raw = STANDALONE.read_bytes().replace(b'<GenDate V="', b'<GenDate V="13116900216-', 1)
    with pytest.raises(ValidationError) as info:
        schemas.validate(parse_xml(raw))
    reason = info.value.reason
    assert reason.startswith("KITH_XSD_INVALID: line ")
    assert "at /Message/GenDate/@V: value not valid for its type" in reason
    assert "13116900216" not in reason and "'" not in reason


@pytest.mark.parametrize("value", ["O'Hara 13116900216", "O'Hara' 131169 00216", "'", "a'b'c 1311.6900-216"])
@pytest.mark.parametrize("where", ["attribute", "element"])
def test_a_value_with_apostrophes_never_reaches_the_reason(schemas: SchemaSet, value: str, where: str) -> None:
    raw = STANDALONE.read_bytes()
    if where == "attribute":
        raw = raw.replace(b'<GenDate V="', b'<GenDate V="' + value.encode(), 1)
    else:
        raw = raw.replace(b"<Number>1</Number>", b"<Number>" + value.encode() + b"</Number>", 1)
    with pytest.raises(ValidationError) as info:
        schemas.validate(parse_xml(raw))
    reason = info.value.reason
    assert "Hara" not in reason and "'" not in reason and "1311" not in reason and "216" not in reason
    assert reason.endswith("]") and "SCHEMAV_CVC_DATATYPE_VALID" in reason


def test_unexpected_element_is_reported_with_its_path(schemas: SchemaSet) -> None:
    raw = STANDALONE.read_bytes().replace(b"<MsgId>", b"<Bogus/><MsgId>", 1)
    with pytest.raises(ValidationError, match=r"at /Message/Bogus: element not expected here.*; expected MsgId "):
        schemas.validate(parse_xml(raw))


def test_payload_error_inside_msghead_points_into_the_payload(schemas: SchemaSet) -> None:
    raw = MSGHEAD.read_bytes().replace(b"<Sporsmal>", b"<Ukjent/><Sporsmal>", 1)
    with pytest.raises(ValidationError, match=r"/MsgHead/Document/RefDoc/Content/Dialogmelding/Foresporsel/Ukjent"):
        schemas.validate(_target(raw))


def test_unknown_namespace_is_not_covered(schemas: SchemaSet) -> None:
    assert not schemas.covers(etree.fromstring(b'<Message xmlns="urn:example:other"/>'))


def test_resolver_maps_urls_and_relative_paths_to_the_folder(tmp_path: Path) -> None:
    (tmp_path / "kith.xsd").write_bytes((DEFAULT_SCHEMA_DIR / "kith.xsd").read_bytes())
    schema_doc = (
        b'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t" '
        b'xmlns:k="http://www.kith.no/xmlstds" elementFormDefault="qualified">'
        b'<xs:import namespace="http://www.kith.no/xmlstds" '
        b'schemaLocation="http://www.kith.no/xmlstds/../../felleskomponenter/kith.xsd"/>'
        b'<xs:element name="R" type="k:CS"/></xs:schema>'
    )
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(FolderResolver(tmp_path))
    doc = etree.fromstring(schema_doc, parser, base_url=str(tmp_path / "t.xsd"))
    schema = etree.XMLSchema(doc.getroottree())
    assert schema.validate(etree.fromstring(b'<R xmlns="urn:t" V="x"/>'))


def test_missing_imported_schema_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "MsgHead-v1_2.xsd").write_bytes((DEFAULT_SCHEMA_DIR / "MsgHead-v1_2.xsd").read_bytes())
    with pytest.raises(ConfigError, match="do not compile"):
        SchemaSet(tmp_path)


def test_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        SchemaSet(tmp_path / "nope")


def test_element_path_falls_back_to_the_raw_steps() -> None:
    root = etree.fromstring(b"<a><b/><c><d/></c></a>")
    assert element_path(root, "/*/*[2]/*") == "/a/c/d"
    assert element_path(root, "/*/*[9]") == "/a/*[9]"
    assert element_path(root, None) == "/a"


def test_compiling_asks_only_for_schema_files_answered_from_the_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    real = FolderResolver.resolve

    def spy(self: FolderResolver, url: str | None, public_id: str | None, context: object) -> object:
        asked.append(url or "")
        return real(self, url, public_id, context)

    monkeypatch.setattr(FolderResolver, "resolve", spy)
    SchemaSet()
    assert asked and all(u.endswith(".xsd") for u in asked)  # no DTD, nothing else
    assert "http://www.kith.no/xmlstds/kith.xsd" in asked  # absolute imports come through the resolver too
