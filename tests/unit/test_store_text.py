"""What text the journal can hold (engine.store.text): NUL and over-long values, found where they are
cheap to find, named by field path and never by value; envelope metadata made storable."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adapters.mllp.client import synthetic_adt
from engine import ids
from engine.model import Identifier, IdentityLink, MapContext, MappingResult
from engine.store import schema, text
from engine.worker import Mapper
from tests.helpers import envelope, fnr_id, local_id, observation, person


def _problem(*records: object, links: tuple[IdentityLink, ...] = ()) -> str | None:
    result = MappingResult(records=records, links=links)
    return text.problem(result, [r.content_json() for r in result.records])  # type: ignore[attr-defined]


def test_nul_is_found_by_field_path_without_the_value() -> None:
    bad = observation("lab|1", fnr_id(1), 1.0).model_copy(update={"value_text": "hemo\x00globin"})
    assert _problem(observation("lab|0", fnr_id(1), 2.0), bad) == "record 1 (observation) value_text: NUL character"
    who = person(fnr_id(2), others=(local_id("H\x007"),))
    assert _problem(who) == "record 0 (person) identifiers[1].value: NUL character"
    sid = observation("lab|2", fnr_id(1), 1.0)
    sid = sid.model_copy(update={"provenance": sid.provenance.model_copy(update={"source_message_id": "M\x001"})})
    assert _problem(sid) == "record 0 (observation) provenance.source_message_id: NUL character"


def test_values_longer_than_their_column_are_found() -> None:
    assert _problem(observation("k" * 501, fnr_id(1), 1.0)) == "record 0 (observation) key: longer than 500 characters"
    long_id = local_id("9" * 101)
    link = IdentityLink(a=fnr_id(3), b=long_id)
    assert _problem(person(fnr_id(3)), links=(link,)) == "identity link 0 b.value: longer than 100 characters"
    assert _problem(observation("lab|3", local_id("x" * 300), 1.0)).endswith("subject: longer than 300 characters")


def test_storable_text_passes_also_a_literal_backslash_u0000() -> None:
    ok = observation("lab|4", fnr_id(1), 1.0).model_copy(update={"value_text": "a \\u0000 b\x01\x1f"})
    assert _problem(ok, person(fnr_id(1))) is None


def test_envelope_metadata_is_made_storable_and_long_keys_stay_distinct() -> None:
    fine = envelope("e1", dedup="HL7|A|B|1")
    assert text.storable_envelope(fine) is fine
    nul = text.storable_envelope(envelope("e2", dedup="HL7|A|B|M\x001"))
    assert nul.dedup_key == "HL7|A|B|M\\u00001" and nul.raw == b"x"
    a, b = (text.storable_envelope(envelope("e3", dedup="K" * 500 + tail)).dedup_key for tail in ("1", "2"))
    assert a != b and len(a or "") == len(b or "") == text.DEDUP


@pytest.mark.parametrize("field", [name for name, _ in text.ENVELOPE_FIELDS])
@pytest.mark.parametrize("bad", ["long", "nul"])
def test_every_string_field_of_an_envelope_is_made_storable(field: str, bad: str) -> None:
    width = dict(text.ENVELOPE_FIELDS)[field]
    value = "9" * (width + 5) if bad == "long" else "a\x00b"
    fixed = text.storable_envelope(envelope("e").model_copy(update={field: value}))
    for name, w in text.ENVELOPE_FIELDS:
        v = getattr(fixed, name)
        assert v is None or (len(v) <= w and "\x00" not in v), name
    assert getattr(fixed, field) != value and not ids.find_valid_numbers(fixed.id)


def test_a_reception_time_whose_text_is_too_long_becomes_utc() -> None:
    odd = timezone(timedelta(hours=5, minutes=30, seconds=15, microseconds=123456))  # a foreign envelope's
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=odd)
    fixed = text.storable_envelope(envelope("t").model_copy(update={"received_at": when}))
    assert fixed.received_at == when and len(fixed.received_at.isoformat()) <= text.RECEIVED_AT
    usual = envelope("u").model_copy(update={"received_at": when.astimezone(timezone(timedelta(hours=2)))})
    assert text.storable_envelope(usual) is usual


def test_envelope_fields_have_one_width_in_every_table() -> None:
    widths = dict(text.ENVELOPE_FIELDS)
    column = {"envelope_id": "id", "adapter": "adapter", "dedup_key": "dedup_key"}
    for table in schema.metadata.tables.values():
        for c in table.columns:
            if c.name in column:
                assert c.type.length == widths[column[c.name]], f"{table.name}.{c.name}"


def test_the_mapping_step_rejects_nul_in_msh10_and_pid3_and_passes_the_rest_untouched() -> None:
    cases = {
        "msh10": synthetic_adt(1, control_id="MSG\x00001"),
        "pid3": synthetic_adt(2).replace(b"^^^^FNR", b"\x00^^^^FNR"),
        "pid3-long": synthetic_adt(3).replace(b"^^^^FNR", b"^^^^FNR~" + b"7" * 120 + b"^^^HOSP^PI"),
    }
    for name, raw in cases.items():
        env = envelope(name, raw=raw).model_copy(update={"mapping": "hl7v2"})
        out = Mapper()(env)
        assert out.reason_code == "TEXT_NOT_STORABLE", name
        assert out.reason is not None and "\x00" not in out.reason and "Testesen" not in out.reason
    good = Mapper()(envelope("g", raw=synthetic_adt(4)).model_copy(update={"mapping": "hl7v2"}))
    assert not good.dead and good.result is not None and not text.suspect(synthetic_adt(4), good.result)


def test_nul_made_by_decoding_is_found_where_the_store_serialises() -> None:
    raw = synthetic_adt(5).replace(b"Testesen^", b"Test\\X00\\esen^")  # an HL7 hex escape: no 0x00 byte
    out = Mapper()(envelope("esc", raw=raw).model_copy(update={"mapping": "hl7v2"}))
    assert out.result is not None and not text.suspect(raw, out.result)
    contents = [r.content_json() for r in out.result.records]
    with pytest.raises(text.TextNotStorable) as err:
        text.check(out.result, contents)
    assert err.value.reason == "TEXT_NOT_STORABLE: record 0 (person) family_name: NUL character"


def wide_link_mapping(raw: bytes, ctx: MapContext) -> MappingResult:
    """A link whose identifier fits its system and value columns but not, joined, its key column."""
    wide = Identifier(system="urn:" + "s" * 196, value="7" * 100, kind="LOCAL")
    return MappingResult(records=(person(fnr_id(4)),), links=(IdentityLink(a=fnr_id(4), b=wide),))


def test_an_identity_link_longer_than_its_key_column_is_rejected_at_the_mapping_step() -> None:
    result = wide_link_mapping(b"", envelope("w").context())
    assert text.suspect(b"", result)
    assert text.problem(result, []) == "identity link 0 b.key: longer than 300 characters"
    env = envelope("w").model_copy(update={"mapping": f"{__name__}:wide_link_mapping"})
    out = Mapper()(env)
    assert out.reason_code == "TEXT_NOT_STORABLE"
    assert out.reason == "TEXT_NOT_STORABLE: identity link 0 b.key: longer than 300 characters"
