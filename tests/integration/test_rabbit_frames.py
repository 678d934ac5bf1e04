"""RabbitMQ frames on a real broker: envelopes published together travel as frames, are consumed as
single deliveries, and a worker batch never splits a frame (its one ack settles all of it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pika

from engine.bus.rabbit import RabbitBus
from engine.config import RabbitBusConfig
from engine.envelope import Envelope


def _envs(n: int, size: int = 40) -> list[Envelope]:
    return [
        Envelope.build(b"%06d" % i + b"x" * size, adapter="t", mapping="hl7v2", content_type="application/hl7-v2")
        for i in range(n)
    ]


@contextmanager
def _bus(amqp_names: dict[str, str], **kw: Any) -> Iterator[RabbitBus]:
    b = RabbitBus(RabbitBusConfig(url="amqp://guest@127.0.0.1:5672/%2F", **amqp_names, **kw))
    b.declare()
    try:
        yield b
    finally:
        b.delete_topology()
        b.close()


def _amqp_messages(queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    try:
        return int(conn.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        conn.close()


def test_a_publish_call_goes_in_frames_and_comes_back_as_envelopes(rabbit_url: str, amqp_names: dict[str, str]) -> None:
    with _bus(amqp_names, frame_envelopes=64) as bus:
        envs = _envs(300)
        bus.publish(envs)
        assert _amqp_messages(amqp_names["queue"]) == 5  # 64+64+64+64+44
        c = bus.consumer(prefetch=10)
        got: list[Envelope] = []
        while len(got) < 300:
            batch = c.fetch(max_items=10, timeout=2.0)  # fewer than a frame: the whole frame comes anyway
            assert batch and len(batch) % 64 in (0, 44) and len({d.tag for d in batch}) == 1
            got += [d.envelope for d in batch]
            c.ack(batch)
        assert got == envs
        c.close()
        assert _amqp_messages(amqp_names["queue"]) == 0


def test_frame_bytes_limit(rabbit_url: str, amqp_names: dict[str, str]) -> None:
    with _bus(amqp_names, frame_envelopes=1000, frame_bytes=4096) as bus:
        envs = _envs(50, size=994)  # 1000 bytes each: four per frame
        bus.publish(envs)
        assert _amqp_messages(amqp_names["queue"]) == 13
        c = bus.consumer(prefetch=1)
        first = c.fetch(max_items=1, timeout=2.0)
        assert [d.envelope for d in first] == envs[:4] and not first[0].redelivered
        c.ack(first)
        c.close()
        assert _amqp_messages(amqp_names["queue"]) == 12


def test_single_envelopes_and_dead_letters_stay_one_message_each(rabbit_url: str, amqp_names: dict[str, str]) -> None:
    with _bus(amqp_names, frame_envelopes=1) as bus:
        envs = _envs(3)
        bus.publish(envs)
        bus.dead_letter([(e, "X: why") for e in envs])
        assert _amqp_messages(amqp_names["queue"]) == 3
        assert _amqp_messages(amqp_names["dead_letter_queue"]) == 3


def test_a_redelivered_frame_is_split_into_single_envelopes(rabbit_url: str, amqp_names: dict[str, str]) -> None:
    with _bus(amqp_names, frame_envelopes=64) as bus:
        envs = _envs(100)
        bus.publish(envs)
        c = bus.consumer(prefetch=1)
        first = c.fetch(max_items=1, timeout=2.0)
        assert len(first) == 64
        c.requeue(first)  # as if its worker died holding it
        c.close()
        c = bus.consumer(prefetch=200)
        got: list[Envelope] = []
        tags_of: dict[str, int] = {}
        while len(got) < 100:
            batch = c.fetch(max_items=500, timeout=0.3)
            assert batch
            got += [d.envelope for d in batch]
            tags_of.update({d.envelope.id: d.tag for d in batch})
            c.ack(batch)
        c.close()
        assert sorted(e.id for e in got) == sorted(e.id for e in envs)  # each once
        split = [tags_of[e.id] for e in envs[:64]]
        assert len(set(split)) == 64  # one AMQP message each now
        assert _amqp_messages(amqp_names["queue"]) == 0


def test_a_message_that_keeps_killing_workers_is_dead_lettered_as_poison(
    rabbit_url: str, amqp_names: dict[str, str], sqlite_store: Any
) -> None:
    """Quorum queue, delivery limit 3: a frame whose worker dies is split; the envelope delivered three
    times without a commit is archived and dead-lettered as POISON_MESSAGE, the others are journaled."""
    from adapters.mllp.client import synthetic_adt
    from engine.worker import Mapper, Worker

    envs = [
        Envelope.build(synthetic_adt(i), adapter="t", mapping="hl7v2", content_type="application/hl7-v2")
        for i in range(5)
    ]
    with _bus(amqp_names, queue_type="quorum", delivery_limit=3) as bus:
        bus.publish(envs)
        c = bus.consumer(prefetch=10)
        assert len(c.fetch(max_items=10, timeout=2.0)) == 5
        c.close()  # the worker died holding the frame
        poison = envs[2].id
        for _ in range(3):  # the envelope kills every worker that takes it; the others are handled
            c = bus.consumer(prefetch=1)
            for _ in range(10):
                batch = c.fetch(max_items=1, timeout=0.5)
                if not batch:
                    break
                if batch[0].envelope.id == poison and batch[0].delivery_count < 3:
                    break  # dies holding it
                Worker(bus, sqlite_store, Mapper(), delivery_limit=3).handle(c, batch)
            c.close()
        c = bus.consumer(prefetch=10)
        while batch := c.fetch(max_items=10, timeout=0.5):
            Worker(bus, sqlite_store, Mapper(), delivery_limit=3).handle(c, batch)
        c.close()
    dead = sqlite_store.dead_letters()
    assert [(d["envelope_id"], d["reason_code"]) for d in dead] == [(poison, "POISON_MESSAGE")]
    assert sqlite_store.counts()["received"] == {"t": 5}
