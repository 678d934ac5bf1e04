"""No personal data in logs: the masking processor, and the national-id type that prints masked."""

from __future__ import annotations

import io

import structlog

from engine import ids
from engine import logging as elog
from engine.model import Identifier
from tests.helpers import fnr


def test_masking_processor_masks_valid_numbers_in_any_field() -> None:
    buf = io.StringIO()
    elog.configure("debug", "json", stream=buf)
    n = fnr(5)
    structlog.get_logger("t").info("x.happened", note=f"id {n}", nested={"a": [n]}, count=3, pii_masking_selftest=True)
    line = buf.getvalue()
    assert n not in line and ids.mask(n) in line and '"count": 3' in line


def test_identifier_and_national_id_print_masked() -> None:
    n = fnr(6)
    assert n not in repr(Identifier(system=ids.OID_FNR, value=n, kind="FNR"))
    nid = ids.NationalId(n)
    assert n not in str(nid) and n not in repr(nid) and nid.value == n


def test_mod11_rules() -> None:
    assert ids.classify("13116900216") is ids.IdKind.FNR  # Line Danser, official test person
    assert ids.classify("45088649080") is ids.IdKind.DNR
    assert ids.classify("13116900217") is None
    assert ids.birth_date("13116900216").isoformat() == "1969-11-13"
    syn = ids.synthetic_fnr(13, 11, 1969, 100)
    assert syn is not None and ids.classify(syn) is ids.IdKind.FNR and ids.NationalId(syn).synthetic


def test_generated_ids_never_look_like_national_ids() -> None:
    from engine.envelope import new_id

    assert ids.log_safe("ab13116900216cd") == "ab1311690021mcd"
    assert ids.log_safe("3fa85f64-5717-4562-b3fc-2c963f66afa6") == "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    assert not any(ids.FNR_LIKE.search(new_id()) for _ in range(20000))
