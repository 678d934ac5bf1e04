"""HL7 v2 escape sequences (chapter 2.7): unescape on read, escape on write.

Supported on read: ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\`` (delimiters), ``\\Xhh..\\`` (hex bytes, read
as UTF-8 when valid, else Latin-1), ``\\.br\\`` and ``\\.sp\\`` (line break), ``\\H\\``/``\\N\\``
(highlighting, dropped), ``\\Cxxyy\\``/``\\Mxxyyzz\\`` (charset switches, dropped), other ``\\.xx\\``
formatting commands (dropped). An unknown or unterminated sequence is kept literally.

On write the escape character goes first, then the delimiters, and CR/LF become ``\\X0D\\``/``\\X0A\\``
so that ``unescape(escape(s)) == s`` for every string.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delimiters:
    """Field, component, repetition, escape, sub-component and (v2.7+) truncation characters.

    An empty escape or sub-component character means the message declared none (short MSH-2).
    """

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def encoding_chars(self) -> str:
        """MSH-2 as written."""
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


def _hex(body: str) -> str | None:
    if len(body) % 2 or not body:
        return None
    try:
        data = bytes.fromhex(body)
    except ValueError:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("iso-8859-1")


def _sequence(body: str, d: Delimiters) -> str | None:
    """The text an escape sequence body (between escape characters) stands for, or None if unknown."""
    simple = {"F": d.field, "S": d.component, "T": d.subcomponent, "R": d.repetition, "E": d.escape}
    if simple.get(body):
        return simple[body]
    if body == "P" and d.truncation:
        return d.truncation
    if body in (".br", ".sp"):
        return "\n"
    if body in ("H", "N") or (body.startswith(".") and len(body) >= 3):
        return ""
    head = body[:1]
    if head == "X":
        return _hex(body[1:])
    if head in ("C", "M") and len(body) in (5, 7) and all(c in "0123456789ABCDEFabcdef" for c in body[1:]):
        return ""
    return None


def unescape(value: str, d: Delimiters) -> str:
    """``value`` with escape sequences resolved (fast path: no escape character present)."""
    esc = d.escape
    if not esc or esc not in value:
        return value
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        j = value.find(esc, i)
        if j < 0:
            out.append(value[i:])
            break
        out.append(value[i:j])
        k = value.find(esc, j + 1)
        if k < 0:
            out.append(value[j:])
            break
        text = _sequence(value[j + 1 : k], d)
        if text is None:
            out.append(value[j : k + 1])
        else:
            out.append(text)
        i = k + 1
    return "".join(out)


def escape(value: str, d: Delimiters) -> str:
    """``value`` with delimiters, the escape character and CR/LF escaped for writing."""
    esc = d.escape
    if not esc:
        return value
    out = value.replace(esc, f"{esc}E{esc}")
    for char, code in (
        (d.field, "F"),
        (d.component, "S"),
        (d.subcomponent, "T"),
        (d.repetition, "R"),
        (d.truncation, "P"),
    ):
        if char and char in out:
            out = out.replace(char, f"{esc}{code}{esc}")
    if "\r" in out:
        out = out.replace("\r", f"{esc}X0D{esc}")
    if "\n" in out:
        out = out.replace("\n", f"{esc}X0A{esc}")
    return out
