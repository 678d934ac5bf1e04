"""The parsed HL7 v2 message: delimiters, segments and value access by HL7 position.

A segment keeps its fields as raw (escaped) strings indexed by HL7 position: ``fields[0]`` is the
segment id, ``fields[3]`` is e.g. PID-3; for MSH ``fields[1]`` is the field separator (MSH-1) and
``fields[2]`` the encoding characters (MSH-2). Repetitions, components and sub-components are split
and unescaped only when a value is read. ``""`` (the HL7 explicit null) reads as ``""`` from
:meth:`Segment.get` and is told apart from an empty value by :meth:`Segment.is_null`.

:meth:`Segment.get` reads one value; :meth:`Segment.comps` reads all components of a field in one pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

from mappings.hl7v2.escape import Delimiters, escape, unescape

__all__ = [
    "NULL",
    "Delimiters",
    "FieldValue",
    "Message",
    "Segment",
    "delimiters_from_msh2",
    "split_first",
    "split_reps",
    "split_value",
    "text_of",
]

NULL = '""'

#: A field value for :meth:`Segment.from_values`: None (empty), ``NULL``, a plain string, or
#: repetitions -> components -> sub-components.
FieldValue = None | str | Sequence[Sequence[Sequence[str]]]


@lru_cache(maxsize=64)
def delimiters_from_msh2(field_sep: str, enc: str) -> Delimiters:
    """Delimiters from MSH-1 and MSH-2 (missing escape/sub-component characters mean "none").

    Cached: messages with the same MSH-1/MSH-2 share one instance, which makes caches keyed by
    delimiters compare by identity instead of field by field.
    """
    return Delimiters(
        field=field_sep,
        component=enc[0] if enc else "^",
        repetition=enc[1] if len(enc) > 1 else "~",
        escape=enc[2] if len(enc) > 2 else "",
        subcomponent=enc[3] if len(enc) > 3 else "",
        truncation=enc[4] if len(enc) > 4 else "",
    )


class Segment:
    """One segment: id and raw fields by HL7 position, read with :meth:`get`."""

    __slots__ = ("d", "fields", "id")

    def __init__(self, seg_id: str, fields: list[str], delims: Delimiters) -> None:
        self.id = seg_id
        self.fields = fields
        self.d = delims

    def raw(self, f: int) -> str:
        """The raw (escaped) text of field ``f``; ``""`` when absent."""
        fields = self.fields
        return fields[f] if f < len(fields) else ""

    def reps(self, f: int) -> list[str]:
        """Raw repetitions of field ``f`` (MSH-1/MSH-2 are never split)."""
        v = self.raw(f)
        if not v:
            return []
        if self.id == "MSH" and f <= 2:
            return [v]
        return v.split(self.d.repetition)

    def _atom(self, f: int, c: int, s: int, rep: int) -> str:
        v = self.raw(f)
        if not v or (self.id == "MSH" and f <= 2):
            return v
        d = self.d
        if rep or d.repetition in v:
            r = v.split(d.repetition)
            v = r[rep] if rep < len(r) else ""
        if c > 1 or d.component in v:
            cs = v.split(d.component)
            v = cs[c - 1] if c - 1 < len(cs) else ""
        if d.subcomponent and (s > 1 or d.subcomponent in v):
            ss = v.split(d.subcomponent)
            v = ss[s - 1] if s - 1 < len(ss) else ""
        return v

    def get(self, f: int, c: int = 1, s: int = 1, rep: int = 0) -> str:
        """Unescaped value at ``f.c.s`` of repetition ``rep`` (0-based); ``""`` if empty, absent or null."""
        fields = self.fields
        if f >= len(fields):
            return ""
        v = fields[f]
        if not v:
            return v
        if f <= 2 and self.id == "MSH":
            return v
        d = self.d
        if rep or d.repetition in v:
            v = self._atom(f, c, s, rep)
        else:
            if c > 1 or d.component in v:
                cs = v.split(d.component)
                v = cs[c - 1] if c <= len(cs) else ""
            if s > 1 or (d.subcomponent and d.subcomponent in v):
                ss = v.split(d.subcomponent) if d.subcomponent else [v]
                v = ss[s - 1] if s <= len(ss) else ""
        if v == NULL:
            return ""
        return unescape(v, d) if d.escape and d.escape in v else v

    def comps(self, f: int) -> list[str]:
        """Components of field ``f`` as :meth:`get` reads them, in one pass (``comps(f)[c - 1] ==
        get(f, c)``; at least one item): for reading several components of one field."""
        v = self.raw(f)
        return [v] if f <= 2 and self.id == "MSH" else split_first(v, self.d)

    def is_null(self, f: int, c: int | None = None, s: int | None = None, rep: int = 0) -> bool:
        """True when the value (the whole field by default) is the explicit null ``""``."""
        if c is None:
            r = self.reps(f)
            return len(r) > rep and r[rep] == NULL
        return self._atom(f, c, s or 1, rep) == NULL

    def parts(self, f: int, rep: int = 0) -> list[list[str]]:
        """Repetition ``rep`` of field ``f`` as unescaped components x sub-components."""
        r = self.reps(f)
        if rep >= len(r):
            return []
        return split_value(r[rep], self.d)

    def all_parts(self, f: int) -> list[list[list[str]]]:
        """Every repetition of field ``f`` as components x sub-components (unescaped)."""
        return [split_value(r, self.d) for r in self.reps(f)]

    def text(self, f: int, rep: int = 0) -> str:
        """The whole repetition unescaped, delimiters kept (e.g. a TX/FT value with ``^``)."""
        r = self.reps(f)
        return text_of(r[rep], self.d) if rep < len(r) else ""

    def to_text(self) -> str:
        if self.id == "MSH":
            return "MSH" + self.fields[1] + self.d.field.join(self.fields[2:])
        return self.d.field.join(self.fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Segment) and self.id == other.id and self.fields == other.fields

    def __hash__(self) -> int:  # pragma: no cover - segments are not used as keys
        return hash((self.id, tuple(self.fields)))

    def __repr__(self) -> str:
        return f"Segment({self.id}, {len(self.fields) - 1} fields)"

    @classmethod
    def from_values(cls, seg_id: str, values: Sequence[FieldValue], d: Delimiters) -> Segment:
        """A segment from unescaped values (escaping them); ``values[0]`` is field 1."""
        fields = [seg_id] + [_join_field(v, d) for v in values]
        if seg_id == "MSH":
            fields[1:3] = [d.field, d.encoding_chars]
        return cls(seg_id, fields, d)


def split_value(raw: str, d: Delimiters) -> list[list[str]]:
    """One raw repetition -> unescaped components x sub-components (null ``""`` reads as ``""``)."""
    if raw == NULL:
        return [[""]]
    sub = d.subcomponent
    out = []
    for comp in raw.split(d.component):
        subs = comp.split(sub) if sub and sub in comp else [comp]
        out.append([unescape(x, d) if d.escape and d.escape in x else x for x in subs])
    return out


def split_first(raw: str, d: Delimiters) -> list[str]:
    """A raw field -> its first repetition's components, unescaped (first sub-component of each;
    null ``""`` reads as ``""``), as :meth:`Segment.get` reads them one by one."""
    if d.repetition in raw:
        raw = raw.split(d.repetition, 1)[0]
    out = raw.split(d.component)
    sub, esc = d.subcomponent, d.escape
    if (not sub or sub not in raw) and (not esc or esc not in raw) and NULL not in raw:
        return out  # plain components: nothing to cut, unescape or null
    for i, v in enumerate(out):
        if sub and sub in v:
            v = out[i] = v.split(sub, 1)[0]
        if v == NULL:
            out[i] = ""
        elif esc and esc in v:
            out[i] = unescape(v, d)
    return out


def text_of(raw: str, d: Delimiters) -> str:
    """One raw repetition unescaped as a whole, delimiters kept (null ``""`` reads as ``""``)."""
    return "" if raw == NULL else unescape(raw, d)


def split_reps(raw: str, d: Delimiters) -> list[list[list[str]]]:
    """Every repetition of a raw field -> unescaped components x sub-components (as
    :meth:`Segment.all_parts` reads any field but MSH-1/MSH-2)."""
    return [split_value(r, d) for r in raw.split(d.repetition)] if raw else []


def _join_field(v: FieldValue, d: Delimiters) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v if v == NULL else escape(v, d)
    return d.repetition.join(
        d.component.join(d.subcomponent.join(escape(s, d) for s in comp) for comp in rep) for rep in v
    )


class Message:
    """A parsed message: :attr:`delims` and :attr:`segments` in order, with lookups by segment id."""

    __slots__ = ("delims", "segments")

    def __init__(self, delims: Delimiters, segments: list[Segment]) -> None:
        self.delims = delims
        self.segments = segments

    def segment(self, seg_id: str) -> Segment | None:
        """The first segment with id ``seg_id``, or None."""
        for s in self.segments:
            if s.id == seg_id:
                return s
        return None

    def all(self, seg_id: str) -> list[Segment]:
        """Every segment with id ``seg_id``, in order."""
        return [s for s in self.segments if s.id == seg_id]

    def get(self, seg_id: str, f: int, c: int = 1, s: int = 1, rep: int = 0) -> str:
        """Value of the first ``seg_id`` segment at ``f.c.s`` (``""`` when the segment is absent)."""
        seg = self.segment(seg_id)
        return seg.get(f, c, s, rep) if seg is not None else ""

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    def to_text(self) -> str:
        """Segments joined and terminated by CR."""
        return "".join(s.to_text() + "\r" for s in self.segments)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and self.delims == other.delims and self.segments == other.segments

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Message({[s.id for s in self.segments]})"
