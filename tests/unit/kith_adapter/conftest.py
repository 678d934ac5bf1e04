"""Fixtures of the KITH adapter tests: the compiled schema set (once per session) and sample documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from adapters.kith_file.xsd import DEFAULT_SCHEMA_DIR, SchemaSet
from tests.conftest import FIXTURES, SHARED_CORPUS

KITH_FIXTURES = FIXTURES / "kith_adapter"
MSGHEAD = KITH_FIXTURES / "sarepta_dialogmelding-v1.0_foresporsel.xml"
STANDALONE = KITH_FIXTURES / "sarepta_svarrapport-v1.4_biokjemi_ny.xml"
RECEIPT = KITH_FIXTURES / "sarepta_apprec-v1.0_npr_eksempel.xml"
REFERRAL = KITH_FIXTURES / "sarepta_henvisning-v1.1_n.xml"


def corpus_files() -> list[Path]:
    d = SHARED_CORPUS / "kith"
    return sorted(d.glob("*.xml")) if d.is_dir() else []


@pytest.fixture(scope="session")
def schemas() -> SchemaSet:
    return SchemaSet()


@pytest.fixture(scope="session")
def apprec_schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    """AppRec-v1.1.xsd alone (with the kith.xsd it imports by absolute URL), compiled offline."""
    d = tmp_path_factory.mktemp("apprec-xsd")
    for name in ("AppRec-v1.1.xsd", "kith.xsd"):
        (d / name).write_bytes((DEFAULT_SCHEMA_DIR / name).read_bytes())
    return SchemaSet(d)._schema


def wrap_in_fellesformat(msghead: bytes) -> bytes:
    """A NAV ``EI_fellesformat`` wrapper around a MsgHead (declaration stripped)."""
    body = msghead.split(b"?>", 1)[1] if msghead.lstrip().startswith(b"<?xml") else msghead
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<EI_fellesformat xmlns="http://www.nav.no/xml/eiff/2/">'
        + body
        + b'<MottakenhetBlokk ediLoggId="x1" ebRole="Lege"/></EI_fellesformat>'
    )
