"""One isolated world per fault: a PostgreSQL schema, broker names, a DB proxy, configs, engine processes.

* The store the engine sees is the real PostgreSQL behind :class:`bench.chaos_proxy.TcpProxy`, in a
  schema of its own; the checker reads the same schema directly (never through the proxy).
* RabbitMQ names are unique per world (``chaos.<tag>.*``) and deleted at the end.
* Engine processes are ``python -m engine.cli run -c <config>`` subprocesses (PYTHONPATH = the repo);
  each writes stdout and stderr to its own log file under the world's directory, for the PII check.
* Closing the world kills (SIGKILL, by pid) only the processes it started, then drops what it made.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
import yaml

from bench.chaos_proxy import TcpProxy
from engine.bus.rabbit import RabbitBus
from engine.config import RabbitBusConfig
from engine.store import Store

REPO = Path(__file__).resolve().parent.parent
PG_HOST, PG_PORT, PG_DB = "127.0.0.1", 5432, "test"
PG_BASE = os.environ.get("ENJOURNAL_TEST_PG_URL", f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{PG_DB}")
AMQP_URL = "amqp://guest@127.0.0.1:5672/%2F"
_DROP_ENV = ("ENJOURNAL_BUS_URL", "ENJOURNAL_STORE_URL", "ENJOURNAL_CONFIG")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def term(self, deadline: float) -> int | None:
        """SIGTERM, then the exit code within ``deadline`` seconds (None: still running)."""
        if self.alive():
            os.kill(self.popen.pid, signal.SIGTERM)
        try:
            return self.popen.wait(deadline)
        except subprocess.TimeoutExpired:
            return None


class World:
    """See the module docstring. Use as a context manager."""

    def __init__(self, name: str, keep: bool = False) -> None:
        self.name = name
        self.tag = uuid.uuid4().hex[:10]
        self.schema = f"chaos_{self.tag}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"chaos-{name}-"))
        self.keep = keep
        self.names = {
            "exchange": f"chaos.{self.tag}.inbound",
            "queue": f"chaos.{self.tag}.work",
            "dead_letter_exchange": f"chaos.{self.tag}.dlx",
            "dead_letter_queue": f"chaos.{self.tag}.dead",
        }
        self.procs: list[Proc] = []
        self.drain_reruns = 0
        self.proxy = TcpProxy(PG_HOST, PG_PORT)
        self._admin = sa.create_engine(PG_BASE)
        self.bus: RabbitBus | None = None
        self.store: Store | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Self:
        with self._admin.begin() as c:
            c.execute(sa.text(f"CREATE SCHEMA {self.schema}"))
        self.proxy.start()
        self.store = Store(self.direct_url())  # creates the tables
        self.bus = RabbitBus(RabbitBusConfig.model_validate({"url": AMQP_URL, **self.names}))
        self.bus.declare()
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            if p.alive():
                p.kill9()
        for closer in (self._close_bus, self._close_store, self.proxy.close, self._drop_schema):
            try:
                closer()
            except Exception as err:  # noqa: BLE001 - clean up as much as possible
                print(f"chaos: cleaning up {self.name} ({closer.__name__}) failed: {type(err).__name__}")
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _close_bus(self) -> None:
        if self.bus is not None:
            try:
                self.bus.delete_topology()
            finally:
                self.bus.close()

    def _close_store(self) -> None:
        if self.store is not None:
            self.store.close()

    def _drop_schema(self) -> None:
        with self._admin.begin() as c:
            c.execute(sa.text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
        self._admin.dispose()

    # -- urls and configs -----------------------------------------------------------------
    def direct_url(self) -> str:
        return f"{PG_BASE}?options=-csearch_path%3D{self.schema}"

    def proxied_url(self) -> str:
        return (
            f"postgresql+psycopg://postgres@127.0.0.1:{self.proxy.port}/{PG_DB}"
            f"?options=-csearch_path%3D{self.schema}&connect_timeout=5"
        )

    def config(self, file: str, adapters: dict[str, Any] | None = None, workers: int = 1, batch_size: int = 50) -> Path:
        cfg = {
            "bus": {"kind": "rabbitmq", "url": AMQP_URL, **self.names},
            "store": {"url": self.proxied_url(), "pool_size": 2},
            "workers": {"count": workers, "batch_size": batch_size, "batch_wait_ms": 20, "prefetch": batch_size * 2},
            "log": {"level": "info", "format": "json"},
            "adapters": adapters or {},
        }
        path = self.dir / file
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        return path

    # -- engine processes -----------------------------------------------------------------
    def spawn(
        self, name: str, config: Path, *args: str, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> Proc:
        """``enjournal run -c config *args`` as a subprocess; ``prefix``: a command it runs under
        (``setpriv ...``), ``env``: extra environment variables."""
        full = {k: v for k, v in os.environ.items() if k not in _DROP_ENV} | (env or {}) | {"PYTHONPATH": str(REPO)}
        log = self.dir / f"{name}.{len(self.procs):03d}.log"
        cmd = [*prefix, sys.executable, "-m", "engine.cli", "run", "-c", str(config), *args]
        with open(log, "wb") as out:
            popen = subprocess.Popen(cmd, cwd=str(self.dir), env=full, stdout=out, stderr=subprocess.STDOUT)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def drain(self, config: Path, timeout: float = 120.0) -> int | None:
        """Run worker-only engines with ``--until-idle`` until the work queue is empty.

        ``--until-idle`` looks at the ready count only, so an engine may stop with messages still
        prefetched (they go back to the queue): run it again while the queue is not empty.
        Returns the last exit code (None: timed out and killed).
        """
        assert self.bus is not None
        end, code = time.monotonic() + timeout, None
        while time.monotonic() < end:
            proc = self.spawn("drain", config, "--until-idle")
            try:
                code = proc.popen.wait(max(1.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill9()
                return None
            if code != 0 or self.bus.depth()["work"] == 0:
                return code
            self.drain_reruns += 1
        return code

    def logs(self) -> list[Path]:
        return [p.log for p in self.procs]

    def wait_started(self, proc: Proc, timeout: float = 60.0, marker: bytes = b"engine.started") -> bool:
        """Wait until the process logged ``marker`` (False if it died or timed out)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if marker in proc.log.read_bytes():
                return True
            if not proc.alive():
                return False
            time.sleep(0.1)
        return False
