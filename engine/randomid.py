"""Random bytes for ids (envelope ids, trace ids, ACK control ids) without a system call each.

These ids must be unique, not secret. ``os.urandom`` is a system call per id, and an MLLP message needs
several ids on the listener's event loop. A generator of the process's own, seeded from ``os.urandom`` (and
seeded again in a forked child, so parent and child never share a stream), gives uuid4's 122 random bits
per id from user space. The generator is private: code that seeds the ``random`` module for its own
reasons (tests, synthetic data) cannot make ids repeat.
"""

from __future__ import annotations

import os
import random

_rng = random.Random(os.urandom(32))


def _reseed() -> None:
    _rng.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def random_bytes(n: int) -> bytes:
    """``n`` random bytes (see the module docstring: unique ids, not secrets)."""
    return _rng.getrandbits(8 * n).to_bytes(n, "big")
