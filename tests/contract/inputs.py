"""The bad inputs every adapter and mapping is given, each made from a good sample."""

from __future__ import annotations

import random

#: refused outright: nothing in them can be a message
REFUSED = ("empty", "random")
#: a good sample damaged: refused, or (a format that cannot tell) mapped with a warning it did not give before
DAMAGED = ("half", "nul")
BAD_CASES = REFUSED + DAMAGED
RANDOM_BYTES = random.Random(19).randbytes(512)


def bad_input(case: str, good: bytes) -> bytes:
    """``empty``: no bytes; ``random``: 512 fixed random bytes; ``half``: the first half of ``good``;
    ``nul``: ``good`` with a 0x00 byte in its middle."""
    middle = len(good) // 2
    variants = {
        "empty": b"",
        "random": RANDOM_BYTES,
        "half": good[:middle],
        "nul": good[:middle] + b"\x00" + good[middle:],
    }
    return variants[case]
