"""The process heap and the cyclic garbage collector.

An engine process imports and builds a large, long-lived object graph (models, SQLAlchemy, pika,
parsers, XML schemas). CPython's full collections walk all of it, and pause every thread meanwhile:
long enough for the MLLP listener to miss its ACK latency target.
:func:`freeze` moves what exists after start-up into the permanent generation, so later collections
only walk objects made since.

It also raises the young-generation threshold (:data:`THRESHOLDS`). A worker keeps a whole batch of
mapped records alive until its commit, so with CPython's default (a collection every 700 net new
container objects) the collector walks the same survivors again and again, a large share of the
mapping's own CPU. Garbage without cycles is freed by reference counting whatever the
threshold; only cyclic garbage waits longer (a few MB at most). A young collection walks the objects
made since the last one that are still alive: the MLLP listener keeps few alive, so it collects rarely.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterable

#: (young, middle, old) collection thresholds; CPython's default is (700, 10, 10)
THRESHOLDS = (50_000, 20, 100)


def freeze(modules: Iterable[str] = ()) -> None:
    """Import ``modules`` (work a first message would otherwise do), collect once, freeze, and set
    :data:`THRESHOLDS`."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # a missing optional module is reported where it is used
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
