"""Every directory adapter survives an unreadable inbox and descriptor exhaustion, in a process of its own.

The tests run as root, which ignores permission bits, so the adapter runs in a subprocess that drops
its privileges to ``nobody`` (:mod:`tests.integration.inbox_child`) and ``chmod 000`` on its inbox is a
real ``EACCES``; for
``EMFILE`` the child lowers its own ``RLIMIT_NOFILE`` below every descriptor it holds. In both cases
the adapter thread must stay alive, log ``inbox.unavailable`` (with the errno name) and
``inbox.available`` once each, leave the file that arrived meanwhile in place, and pick it up by
itself once the cause is gone; what it published is on the real RabbitMQ queue.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.bus.rabbit import RabbitBus
from tests.conftest import REPO
from tests.integration import inbox_kinds as k
from tests.unit.mllp.helpers import drain

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


class Child:
    """The child process and the JSON lines it printed."""

    def __init__(self, kind: str, root: Path, names: dict[str, str], user: str | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
        args = [kind, str(root), json.dumps(names), *([user] if user else [])]
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.inbox_child", *args],
            cwd=str(root),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.events: list[dict[str, Any]] = []
        self.other: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            try:
                self.events.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                self.other.append(line.decode("utf-8", "replace"))

    def send(self, command: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(command.encode() + b"\n")
        self.popen.stdin.flush()

    def saw(self, event: str) -> Callable[[], bool]:
        return lambda: any(e.get("event") == event for e in self.events)

    def named(self, prefix: str) -> list[tuple[str, str | None]]:
        return [(e["event"], e.get("errno")) for e in self.events if str(e.get("event", "")).startswith(prefix)]

    def stop(self) -> int:
        self.send("stop")
        code = self.popen.wait(30)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """Kill it if it still runs; close the pipes."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._reader.join(5)
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def world_root() -> Iterator[Path]:
    """A directory ``nobody`` can reach and own (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="enjournal-inbox-", dir="/tmp"))
    os.chmod(root, 0o755)
    nobody = pwd.getpwnam("nobody")
    os.chown(root, nobody.pw_uid, nobody.pw_gid)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _start(kind: str, root: Path, names: dict[str, str], user: str | None = None) -> Child:
    child = Child(kind, root, names, user)
    if not k.wait(child.saw("child.ready"), 60):
        child.kill()
        pytest.fail(f"child did not start: {child.other[-5:]}")
    return child


def _archived(root: Path) -> list[str]:
    archive = root / "in" / "archive"
    return (
        sorted(p.name for p in archive.iterdir() if not p.name.endswith((".reason", ".rejects.csv")))
        if archive.is_dir()
        else []
    )


@pytest.mark.parametrize("kind", k.KINDS)
def test_an_unreadable_inbox_is_waited_for_and_resumed(
    kind: str, world_root: Path, rabbit_bus: RabbitBus, amqp_names: dict[str, str]
) -> None:
    child = _start(kind, world_root, amqp_names, user="nobody")
    inbox = world_root / "in"
    first, later = k.valid(kind, 1), k.valid(kind, 2)
    try:
        k.drop(inbox, *first)
        assert k.wait(lambda: _archived(world_root) == [first[0]]), child.other[-5:]
        os.chmod(inbox, 0o000)
        assert k.wait(child.saw("inbox.unavailable"))
        k.drop(inbox, *later)  # root can still write here; the adapter cannot even list it
        time.sleep(1.0)
        assert (inbox / later[0]).exists()
        os.chmod(inbox, 0o755)
        assert k.wait(lambda: _archived(world_root) == sorted([first[0], later[0]]))
        assert child.stop() == 0  # its thread was alive all along
    finally:
        os.chmod(inbox, 0o755)
        child.kill()
    assert child.named("inbox.") == [("inbox.unavailable", "EACCES"), ("inbox.available", None)]
    assert sorted(e.attributes["file"] for e in drain(rabbit_bus)) == sorted([first[0], later[0]])


@pytest.mark.parametrize("kind", k.KINDS)
def test_descriptor_exhaustion_is_waited_for_and_resumed(
    kind: str, tmp_path: Path, rabbit_bus: RabbitBus, amqp_names: dict[str, str]
) -> None:
    child = _start(kind, tmp_path, amqp_names)
    inbox = tmp_path / "in"
    first, later = k.valid(kind, 1), k.valid(kind, 2)
    try:
        k.drop(inbox, *first)
        assert k.wait(lambda: _archived(tmp_path) == [first[0]]), child.other[-5:]
        child.send("exhaust")
        assert k.wait(child.saw("inbox.unavailable"))
        assert [e["emfile"] for e in child.events if e.get("event") == "child.exhausted"] == [True]
        k.drop(inbox, *later)
        time.sleep(1.0)
        assert (inbox / later[0]).exists()  # not moved to error/: it could not be opened for now
        child.send("release")
        assert k.wait(lambda: _archived(tmp_path) == sorted([first[0], later[0]]))
        assert child.stop() == 0
    finally:
        child.kill()
    assert child.named("inbox.") == [("inbox.unavailable", "EMFILE"), ("inbox.available", None)]
    assert not list((inbox / "error").iterdir())
    assert sorted(e.attributes["file"] for e in drain(rabbit_bus)) == sorted([first[0], later[0]])
