"""Ids from engine.randomid: unique, unaffected by seeding the random module, different in a forked child."""

from __future__ import annotations

import os
import random

from engine.envelope import new_id
from engine.randomid import random_bytes


def test_ids_are_unique_and_uuid4_shaped() -> None:
    ids = [new_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and i.isalnum() for i in ids[:1000])
    assert len(random_bytes(10)) == 10


def test_seeding_the_random_module_does_not_repeat_ids() -> None:
    random.seed(42)
    first = new_id()
    random.seed(42)
    assert new_id() != first


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next id and leave at once
        os.write(w, new_id().encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    child = os.read(r, 64).decode()
    os.close(r)
    assert child != new_id()
