"""A directory adapter in a process of its own, for faults the test process cannot suffer itself.

``python -m tests.integration.inbox_child KIND ROOT NAMES_JSON [USER]`` runs adapter ``KIND`` (inbox
``ROOT/in``) on RabbitMQ with the queue names in ``NAMES_JSON``, logging JSON lines to stdout, and
obeys commands on stdin, one per line:

* ``exhaust``: lower the soft ``RLIMIT_NOFILE`` to 3 (stdin, stdout, stderr): every new descriptor
  of the process fails with ``EMFILE``, whatever it closes meanwhile;
* ``release``: raise it again;
* ``stop``: stop the adapter and exit 0 if its thread was still alive (it never died), 3 otherwise.

With ``USER`` (``nobody``) it drops its privileges (``os.setuid``) once everything is imported and
before the adapter makes its directories, so ``chmod 000`` on the inbox is a real ``EACCES`` (the
interpreter itself may live where that user cannot read, hence no ``Popen(user=...)``).
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import resource
import sys
import threading
from pathlib import Path

import structlog

from engine import logging as elog
from engine.bus.rabbit import RabbitBus
from engine.config import RabbitBusConfig
from tests.integration import inbox_kinds as k


def _say(event: str, **fields: object) -> None:
    structlog.get_logger("inbox_child").info(event, **fields)  # the adapter's lines go through the same lock


def _exhausted() -> bool:
    """True when no descriptor can be had (EMFILE)."""
    try:
        os.close(os.open("/dev/null", os.O_RDONLY))
    except OSError as exc:
        return exc.errno == errno.EMFILE
    return False


def _become(user: str) -> None:
    """Drop root for ``user`` (after every import the run needs: the standard library may be unreadable)."""
    import adapters.csv
    import adapters.hl7_file
    import adapters.inbox
    import adapters.kith_file  # noqa: F401
    import engine.runtime  # noqa: F401 - all imported while still allowed to

    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


def main(kind: str, root: str, names: str, user: str | None = None) -> int:
    elog.configure("info", "json", sys.stdout)
    bus = RabbitBus(RabbitBusConfig(url="amqp://guest@127.0.0.1:5672/%2F", **json.loads(names)))
    bus.depth()  # connected (and every module of the client loaded) while still root
    if user:
        _become(user)
    adapter = k.adapter(kind, Path(root), bus, poll_interval=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=adapter.run, args=(stop,), daemon=True)
    thread.start()
    _say("child.ready")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for line in sys.stdin:
        command = line.strip()
        if command == "exhaust":
            resource.setrlimit(resource.RLIMIT_NOFILE, (3, hard))
            _say("child.exhausted", emfile=_exhausted())
        elif command == "release":
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            _say("child.released")
        elif command == "stop":
            break
    alive = thread.is_alive()
    stop.set()
    thread.join(20)
    bus.close()
    _say("child.stopped", alive=alive)
    return 0 if alive else 3


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
