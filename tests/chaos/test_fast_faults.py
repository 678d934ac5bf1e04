"""The fast subset of the fault suite (``make chaos`` runs it all, longer): real RabbitMQ and PostgreSQL.

Worker kill -9 at a few points, a short database outage through the proxy, MLLP clients cut
mid-frame, truncated files, poison messages PostgreSQL cannot store; each asserts lost == 0,
duplicated == 0 and no PII in any engine log or dead-letter reason. The broker is never stopped here
(CI shares it). A last test shows the checker itself sees a loss, a duplicate and PII, so a green run
is not a vacuous one.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bench import chaos_faults, chaos_faults_io, chaos_faults_poison
from bench.chaos_checker import Result, reconcile, scan_pii
from bench.chaos_data import make_set
from bench.chaos_env import World
from bench.chaos_run import Options, fast, publish

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


@pytest.fixture
def opts(rabbit_url: str, pg_base_url: str) -> Options:
    o = fast()
    o.messages = 200
    return o


def _assert_clean(res: Result) -> None:
    if res.skipped:
        pytest.skip(res.skipped)
    detail = f"{res} notes={res.notes} errors={res.errors}"
    assert res.lost == 0, detail
    assert res.duplicated == 0, detail
    assert res.unexpected == 0, detail
    assert res.pii == 0, detail
    assert not res.errors, detail


def test_worker_kill9_at_random_points_loses_and_duplicates_nothing(opts: Options) -> None:
    res = chaos_faults.worker_kill(opts)
    _assert_clean(res)
    assert res.sent == opts.messages


def test_database_outage_through_the_proxy(opts: Options) -> None:
    _assert_clean(chaos_faults_io.db_outage(opts))


def test_mllp_client_cut_mid_frame(opts: Options) -> None:
    _assert_clean(chaos_faults_io.mllp_mid_frame(opts))


def test_truncated_files_wait_or_end_in_error_or_dead_letters(opts: Options) -> None:
    _assert_clean(chaos_faults_io.truncated_files(opts))


def test_poison_messages_are_dead_lettered_and_stop_nothing(opts: Options) -> None:
    res = chaos_faults_poison.poison(opts)
    _assert_clean(res)
    assert res.sent == opts.messages and any("TEXT_NOT_STORABLE" in n for n in res.notes)


def test_the_checker_sees_loss_duplicates_and_pii(rabbit_url: str, pg_base_url: str) -> None:
    from engine.store import schema as s
    from engine.worker import Mapper, Worker

    msgs = make_set("ck", 30)
    with World("checker") as w:
        assert w.bus is not None and w.store is not None
        publish(w, msgs.messages[:20])
        worker, consumer = Worker(w.bus, w.store, Mapper(), batch_size=50), w.bus.consumer(100)
        try:
            while worker.step(consumer):
                pass
        finally:
            consumer.close()
        with w.store.engine.begin() as c:
            row = dict(c.execute(sa.select(s.record_versions).limit(1)).one()._mapping)
            c.execute(sa.insert(s.record_versions), [{**row, "version_hash": "f" * 32}])
        res = Result("checker")
        reconcile(res, msgs, w.store.engine, [])
        scan_pii(res, msgs, [("log", f"patient {msgs.messages[3].fnr} {msgs.messages[4].family}")])
    assert res.lost == 10 and res.duplicated == 1 and res.unexpected == 0
    assert res.pii >= 2
