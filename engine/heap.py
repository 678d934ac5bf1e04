"""The process heap and the cyclic garbage collector.

An engine process imports and builds a large, long-lived object graph (models, SQLAlchemy, pika,
parsers, XML schemas). CPython's full collections walk all of it: measured here, one gen-2 collection
paused every thread of the MLLP listener for 40-70 ms, which alone blew the ACK latency target.
:func:`freeze` moves what exists after start-up into the permanent generation, so later collections
only walk objects made since.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterable


def freeze(modules: Iterable[str] = ()) -> None:
    """Import ``modules`` (work a first message would otherwise do), collect once, then freeze."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # a missing optional module is reported where it is used
    gc.collect()
    gc.freeze()
