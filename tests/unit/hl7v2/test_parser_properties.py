"""Property tests (hypothesis): escape/unescape and parse(serialise(x)) == x for generated messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.hl7v2.escape import escape, unescape
from mappings.hl7v2.message import NULL, Delimiters, Message, Segment
from mappings.hl7v2.parser import parse, serialise

_DELIM_POOL = "|^~\\&#!$%*@+:;?/=<>"


@st.composite
def delimiters(draw: st.DrawFn) -> Delimiters:
    chars = draw(st.permutations(_DELIM_POOL))
    truncation = chars[5] if draw(st.booleans()) else ""
    return Delimiters(
        field=chars[0],
        component=chars[1],
        repetition=chars[2],
        escape=chars[3],
        subcomponent=chars[4],
        truncation=truncation,
    )


# text with every delimiter, backslashes, CR/LF, Norwegian letters and escape-looking sequences
leaf = st.text(alphabet=st.sampled_from(list(_DELIM_POOL) + list('abcæøåÆØÅ 019XE.rbFSTR\r\n\t"')), max_size=12).filter(
    lambda s: s != NULL
)
component = st.lists(leaf, min_size=1, max_size=3)
repetition = st.lists(component, min_size=1, max_size=3)
field_value = st.one_of(st.none(), st.just(NULL), st.lists(repetition, min_size=1, max_size=3))
seg_id = st.from_regex(r"\A(Z[A-Z0-9]{2}|PID|OBX|OBR|PV1|NTE|EVN)\Z")


@st.composite
def messages(draw: st.DrawFn) -> tuple[Message, list[tuple[str, list]]]:
    d = draw(delimiters())
    msh_values = [
        None,
        None,
        [[["APP"]]],
        [[["FAC"]]],
        None,
        None,
        [[["20260101"]]],
        None,
        [[["ADT"], ["A08"]]],
        [[["CTRL1"]]],
        [[["P"]]],
        [[["2.5"]]],
    ]
    segments = [Segment.from_values("MSH", msh_values, d)]
    generated: list[tuple[str, list]] = []
    for _ in range(draw(st.integers(0, 5))):
        sid = draw(seg_id)
        values = draw(st.lists(field_value, max_size=6))
        segments.append(Segment.from_values(sid, values, d))
        generated.append((sid, values))
    return Message(d, segments), generated


@settings(max_examples=120, deadline=None)
@given(delimiters(), st.text(max_size=40))
def test_unescape_inverts_escape(d: Delimiters, text: str) -> None:
    assert unescape(escape(text, d), d) == text


@settings(max_examples=80, deadline=None)
@given(delimiters(), leaf)
def test_escaped_text_has_no_bare_delimiters(d: Delimiters, text: str) -> None:
    out = escape(text, d)
    for ch in (d.field, d.component, d.repetition, d.subcomponent, "\r", "\n"):
        assert ch not in out


@settings(max_examples=120, deadline=None)
@given(messages())
def test_parse_serialise_round_trip(case: tuple[Message, list[tuple[str, list]]]) -> None:
    msg, generated = case
    back = parse(serialise(msg))
    assert back == msg
    for seg, (sid, values) in zip(back.segments[1:], generated, strict=True):
        assert seg.id == sid
        for f, value in enumerate(values, start=1):
            if value is None:
                assert seg.get(f) == "" and not seg.is_null(f)
            elif value == NULL:
                assert seg.get(f) == "" and seg.is_null(f)
            else:
                for r, rep in enumerate(value):
                    for c, comp in enumerate(rep, start=1):
                        for s, text in enumerate(comp, start=1):
                            assert seg.get(f, c, s, rep=r) == text


# raw field text made of delimiters, nulls, escapes and letters: every reading path gets exercised
raw_field = st.lists(st.sampled_from([*_DELIM_POOL, '""', "\\F\\", "\\X41\\", "a", "b", " "]), max_size=12).map("".join)


@settings(max_examples=200, deadline=None)
@given(delimiters(), st.lists(raw_field, min_size=1, max_size=4), seg_id)
def test_comps_reads_like_get(d: Delimiters, raws: list[str], sid: str) -> None:
    seg = Segment(sid, [sid, *(r.replace(d.field, "") for r in raws)], d)
    for f in range(len(raws) + 2):
        cs = seg.comps(f)
        assert cs, "comps always has the first component"
        for c in range(1, len(cs) + 3):
            assert (cs[c - 1] if c <= len(cs) else "") == seg.get(f, c)


@settings(max_examples=100, deadline=None)
@given(messages())
def test_segment_readers_agree_on_generated_messages(case: tuple[Message, list[tuple[str, list]]]) -> None:
    msg, _ = case
    for seg in parse(serialise(msg)).segments:
        for f in range(len(seg.fields) + 1):
            cs = seg.comps(f)
            assert [seg.get(f, c) for c in range(1, len(cs) + 1)] == cs
