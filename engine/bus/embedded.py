"""Embedded bus: a durable queue table in a local SQLite file. No broker server needed.

Config example::

    bus: {kind: embedded, path: var/queue.db}

* ``publish`` inserts a whole batch in one transaction with ``synchronous=FULL`` (WAL): when it
  returns, the envelopes survive kill -9 and power loss, like a broker confirm.
* Consumers lease a batch (``lease_until``); ``ack`` deletes it after the store commit, ``requeue``
  releases it, and so does ``close`` for what the consumer still held (a worker that crashed). A
  consumer killed with kill -9 leaves a lease that expires, so the batch is delivered again; the first
  consumer of a process that holds the queue's lock file releases stale leases at once.
* Dead letters go to a ``dead`` table with their reason.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson

from engine.bus import Delivery
from engine.envelope import Envelope, decode_or_reject
from engine.errors import BusUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    headers BLOB NOT NULL,
    raw BLOB NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_queue_lease ON queue(lease_until, seq);
CREATE TABLE IF NOT EXISTS dead (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    headers BLOB NOT NULL,
    raw BLOB NOT NULL,
    reason TEXT NOT NULL,
    dead_at REAL NOT NULL
);
"""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class EmbeddedBus:
    """The embedded default behind the :class:`engine.bus.Bus` interface."""

    def __init__(self, path: str | Path, *, lease_seconds: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lease_seconds = lease_seconds
        self._lock = threading.Lock()
        self._wake = threading.Condition()
        self._conn = _connect(self.path)
        self._conn.executescript(_SCHEMA)
        self._lockfile: int | None = None
        self._pending: list[tuple[list[tuple[bytes, bytes]], Future[None]]] = []
        self._pending_lock = threading.Lock()
        self._pending_cond = threading.Condition(self._pending_lock)
        self._writer: threading.Thread | None = None
        self._closing = False

    def declare(self) -> None:
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def check(self) -> None:
        try:
            with self._lock:
                self._conn.execute("SELECT 1 FROM queue LIMIT 1")
        except sqlite3.Error as exc:
            raise BusUnavailable(f"embedded queue unavailable ({type(exc).__name__})") from None

    def publish(self, envelopes: Sequence[Envelope], timeout: float = 30.0) -> None:
        if not envelopes:
            return
        try:
            self.publish_async(envelopes).result(timeout)
        except TimeoutError:
            raise BusUnavailable("embedded queue write timed out") from None

    def ready_to_publish(self) -> bool:
        """Always: :meth:`publish_async` only queues the batch for the writer thread."""
        return True

    def publish_async(self, envelopes: Sequence[Envelope]) -> Future[None]:
        """Queue the batch for the writer thread, which commits everything waiting in one transaction
        (group commit: concurrent publishers share the fsync)."""
        fut: Future[None] = Future()
        if not envelopes:
            fut.set_result(None)
            return fut
        rows = [(orjson.dumps(e.headers()), e.raw) for e in envelopes]
        with self._pending_lock:
            self._pending.append((rows, fut))
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="embedded-bus-writer", daemon=True)
                self._writer.start()
            self._pending_cond.notify()
        return fut

    def _write_loop(self) -> None:
        while True:
            with self._pending_lock:
                while not self._pending and not self._closing:
                    self._pending_cond.wait(1.0)
                if not self._pending and self._closing:
                    return
                batch, self._pending = self._pending, []
            self._commit_group(batch)

    def _commit_group(self, batch: list[tuple[list[tuple[bytes, bytes]], Future[None]]]) -> None:
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for rows, _fut in batch:
                        self._conn.executemany("INSERT INTO queue(headers, raw) VALUES (?, ?)", rows)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            err = BusUnavailable(f"embedded queue write failed ({type(exc).__name__})")
            for _rows, fut in batch:
                fut.set_exception(err)
            return
        for _rows, fut in batch:
            fut.set_result(None)
        with self._wake:
            self._wake.notify_all()

    def dead_letter(self, items: Sequence[tuple[Envelope, str]]) -> None:
        if not items:
            return
        now = time.time()
        rows = [(orjson.dumps(e.headers()), e.raw, reason, now) for e, reason in items]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT INTO dead(headers, raw, reason, dead_at) VALUES (?,?,?,?)", rows)
            self._conn.execute("COMMIT")

    def consumer(self, prefetch: int = 1000) -> EmbeddedConsumer:
        first = self._take_process_lock()
        c = EmbeddedConsumer(self)
        if first:
            c.release_stale_leases()
        return c

    def _take_process_lock(self) -> bool:
        """True once, for the first consumer of the process that owns the queue file."""
        if self._lockfile is not None:
            return False
        fd = os.open(str(self.path) + ".consumer.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lockfile = fd
        return True

    def depth(self) -> dict[str, int]:
        with self._lock:
            work = self._conn.execute("SELECT count(*) FROM queue").fetchone()[0]
            dead = self._conn.execute("SELECT count(*) FROM dead").fetchone()[0]
        return {"work": int(work), "dead": int(dead)}

    def wait_for_work(self, timeout: float) -> None:
        with self._wake:
            self._wake.wait(timeout)

    def close(self) -> None:
        with self._pending_lock:
            self._closing = True
            self._pending_cond.notify_all()
        if self._writer is not None:
            self._writer.join(10)
        with self._lock:
            self._conn.close()
        if self._lockfile is not None:
            os.close(self._lockfile)
            self._lockfile = None


class EmbeddedConsumer:
    """Leases batches from the queue table; one per worker thread."""

    def __init__(self, bus: EmbeddedBus) -> None:
        self._bus = bus
        self._conn = _connect(bus.path)
        self._held: set[int] = set()  # leased, not acked or requeued yet

    def release_stale_leases(self) -> None:
        self._conn.execute("UPDATE queue SET lease_until = 0 WHERE lease_until > 0")

    def fetch(self, max_items: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            got = self._lease(max_items)
            if got or time.monotonic() >= deadline:
                return got
            self._bus.wait_for_work(min(0.05, max(0.0, deadline - time.monotonic())))

    def _lease(self, max_items: int) -> list[Delivery]:
        now = time.time()
        rows: list[Any] = []

        def lease(conn: sqlite3.Connection) -> None:
            rows.extend(
                conn.execute(
                    "SELECT seq, headers, raw, deliveries FROM queue WHERE lease_until < ? ORDER BY seq LIMIT ?",
                    (now, max_items),
                ).fetchall()
            )
            if rows:
                conn.execute(
                    "UPDATE queue SET lease_until = ?, deliveries = deliveries + 1 "
                    "WHERE seq BETWEEN ? AND ? AND lease_until < ?",
                    (now + self._bus.lease_seconds, rows[0][0], rows[-1][0], now),
                )

        _immediate(self._conn, lease, "read")
        self._held.update(r[0] for r in rows)
        return [_delivery(r) for r in rows]

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._apply("DELETE FROM queue WHERE seq = ?", deliveries)

    def requeue(self, deliveries: Sequence[Delivery]) -> None:
        self._apply("UPDATE queue SET lease_until = 0 WHERE seq = ?", deliveries)

    def _apply(self, sql: str, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            _immediate(self._conn, lambda c: c.executemany(sql, [(d.tag,) for d in deliveries]), "update")
            self._held.difference_update(d.tag for d in deliveries)

    def close(self) -> None:
        """Release what is still leased (delivered again at once, its delivery counted), then close."""
        held, self._held = sorted(self._held), set()
        try:
            if held:
                _immediate(
                    self._conn,
                    lambda c: c.executemany("UPDATE queue SET lease_until = 0 WHERE seq = ?", [(seq,) for seq in held]),
                    "release",
                )
        except BusUnavailable:
            pass  # the leases expire by themselves
        finally:
            self._conn.close()


def _immediate(conn: sqlite3.Connection, work: Any, what: str) -> None:
    """Run ``work(conn)`` in one ``BEGIN IMMEDIATE`` transaction; a SQLite failure is BusUnavailable."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        work(conn)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        raise BusUnavailable(f"embedded queue {what} failed ({type(exc).__name__})") from None


def _delivery(row: tuple[Any, ...]) -> Delivery:
    seq, headers, raw, deliveries = row
    env = decode_or_reject(orjson.loads(headers), bytes(raw))
    return Delivery(envelope=env, tag=int(seq), redelivered=deliveries > 0, delivery_count=int(deliveries))
