"""The floor: what the broker and the database can do with no engine code in between.

* **Broker round trip** (raw pika, a queue of its own): publish ``n`` persistent messages of the same
  size as the path's messages with streaming publisher confirms (a window of ``window`` messages is
  published, then the multiple-acks of the whole window are awaited), then consume them with
  ``basic_qos(prefetch=1000)`` and a multi-ack every ``ack_every`` messages. Rate = ``n / (t_publish +
  t_consume)``: every message is published once and consumed once, as in the engine; on this small
  machine publisher and consumer share the CPUs, so the sum is the honest round trip.
* **Database** (raw psycopg, a fresh schema): ``n`` rows as wide as ``record_versions`` (same columns,
  a JSON ``content`` of the path's size) inserted with ``executemany`` (``INSERT ... ON CONFLICT DO
  NOTHING``, pipelined by psycopg, the engine's own mechanism), 1000 rows per transaction; also with
  ``COPY`` for reference.
* **Floor** = ``min(broker round trip rate, executemany rate)``: a message cannot go through the
  engine faster than it can go through the broker, nor faster than its row can be written.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pika
import psycopg
from pika.adapters.select_connection import SelectConnection


@dataclass
class FloorResult:
    messages: int
    publish_s: float
    consume_s: float
    insert_s: float
    copy_s: float

    @property
    def broker_rate(self) -> float:
        return self.messages / max(self.publish_s + self.consume_s, 1e-9)

    @property
    def db_rate(self) -> float:
        return self.messages / max(self.insert_s, 1e-9)

    @property
    def floor(self) -> float:
        return min(self.broker_rate, self.db_rate)


class _ConfirmPublisher:
    """Streaming confirms on an asynchronous connection: publish a window, wait for its acks."""

    def __init__(self, url: str, queue: str, body: bytes, n: int, window: int) -> None:
        self.url, self.queue, self.body, self.n, self.window = url, queue, body, n, window
        self.sent = self.acked = 0
        self.done = threading.Event()
        self.seconds = 0.0
        self._chan: Any = None
        self._t0 = 0.0

    def run(self) -> float:
        conn = SelectConnection(pika.URLParameters(self.url), on_open_callback=self._on_open)
        self._conn = conn
        conn.ioloop.start()
        return self.seconds

    def _on_open(self, conn: Any) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_channel(self, chan: Any) -> None:
        self._chan = chan
        chan.confirm_delivery(self._on_confirm)
        self._t0 = time.perf_counter()
        self._publish_window()

    def _publish_window(self) -> None:
        props = pika.BasicProperties(delivery_mode=2, content_type="application/hl7-v2")
        for _ in range(min(self.window, self.n - self.sent)):
            self._chan.basic_publish("", self.queue, self.body, props)
            self.sent += 1

    def _on_confirm(self, frame: Any) -> None:
        m = frame.method
        self.acked = m.delivery_tag if m.multiple else self.acked + 1
        if self.acked < self.sent:
            return
        if self.sent < self.n:
            self._publish_window()
            return
        self.seconds = time.perf_counter() - self._t0
        self._conn.close()
        self._conn.ioloop.stop()


def broker_round_trip(url: str, body: bytes, n: int, window: int = 1000, ack_every: int = 500) -> tuple[float, float]:
    """(publish seconds, consume seconds) for ``n`` messages of ``body`` on a throw-away queue."""
    queue = f"bench.floor.{uuid.uuid4().hex[:10]}"
    admin = pika.BlockingConnection(pika.URLParameters(url))
    ch = admin.channel()
    ch.queue_declare(queue, durable=True)
    try:
        pub = _ConfirmPublisher(url, queue, body, n, window).run()
        return pub, _consume(ch, admin, queue, n, ack_every)
    finally:
        ch.queue_delete(queue)
        admin.close()


def _consume(ch: Any, conn: Any, queue: str, n: int, ack_every: int) -> float:
    ch.basic_qos(prefetch_count=1000)
    state = {"got": 0, "tag": 0}

    def on_msg(c: Any, method: Any, _props: Any, _body: bytes) -> None:
        state["got"] += 1
        if state["got"] % ack_every == 0 or state["got"] == n:
            c.basic_ack(method.delivery_tag, multiple=True)

    t0 = time.perf_counter()
    tag = ch.basic_consume(queue, on_msg, auto_ack=False)
    while state["got"] < n:
        conn.process_data_events(time_limit=1)
    seconds = time.perf_counter() - t0
    ch.basic_cancel(tag)
    return seconds


_DDL = """CREATE TABLE rv (record_key varchar(500), version_hash varchar(32), kind varchar(30) NOT NULL,
 subject_key varchar(300) NOT NULL, event_us bigint NOT NULL, status varchar(20) NOT NULL, content text NOT NULL,
 envelope_id varchar(64) NOT NULL, adapter varchar(200) NOT NULL, source_message_id varchar(200),
 PRIMARY KEY (record_key, version_hash))"""
_COLS = (
    "record_key, version_hash, kind, subject_key, event_us, status, content, envelope_id, adapter, source_message_id"
)


def _rows(n: int, content_bytes: int, tag: str) -> list[tuple[Any, ...]]:
    content = '{"x":"' + "v" * max(content_bytes - 8, 1) + '"}'
    return [
        (
            f"lab|{tag}|{i}",
            f"{i:032x}",
            "observation",
            f"FNR|{i % 5000:011d}",
            1_700_000_000_000_000 + i,
            "final",
            content,
            f"{i:032x}",
            "bench",
            f"M{i}",
        )
        for i in range(n)
    ]


def db_insert(pg_url: str, n: int, content_bytes: int = 400, per_tx: int = 1000) -> tuple[float, float]:
    """(executemany seconds, COPY seconds) for ``n`` record_versions-wide rows, ``per_tx`` per transaction."""
    schema = f"bench_floor_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        with psycopg.connect(pg_url, options=f"-csearch_path={schema}") as conn:
            conn.execute(_DDL.replace("rv", "rv_many", 1))
            conn.execute(_DDL.replace("rv", "rv_copy", 1))
            conn.commit()
            return _executemany(conn, _rows(n, content_bytes, "m"), per_tx), _copy(
                conn, _rows(n, content_bytes, "c"), per_tx
            )
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def _executemany(conn: psycopg.Connection, rows: list[tuple[Any, ...]], per_tx: int) -> float:
    sql = f"INSERT INTO rv_many ({_COLS}) VALUES ({', '.join(['%s'] * 10)}) ON CONFLICT DO NOTHING"
    t0 = time.perf_counter()
    for i in range(0, len(rows), per_tx):
        with conn.cursor() as cur:
            cur.executemany(sql, rows[i : i + per_tx])
        conn.commit()
    return time.perf_counter() - t0


def _copy(conn: psycopg.Connection, rows: list[tuple[Any, ...]], per_tx: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(rows), per_tx):
        with conn.cursor() as cur, cur.copy(f"COPY rv_copy ({_COLS}) FROM STDIN") as cp:
            for r in rows[i : i + per_tx]:
                cp.write_row(r)
        conn.commit()
    return time.perf_counter() - t0


def measure(amqp_url: str, pg_url: str, body: bytes, n: int, content_bytes: int = 400) -> FloorResult:
    pub, con = broker_round_trip(amqp_url, body, n)
    many, copy = db_insert(pg_url, n, content_bytes)
    return FloorResult(n, pub, con, many, copy)
