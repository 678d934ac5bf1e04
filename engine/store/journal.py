"""The journal store: one transaction per batch of envelopes, idempotent, order-independent.

``commit_batch`` writes, in one transaction: the raw archive rows, the record versions
(``ON CONFLICT DO NOTHING`` on key + content hash), the attachments the records refer to (once per sha256:
:mod:`engine.store.attachments`), the identity edges, the dead letters and the
processed-message keys. Nothing is updated in place, so the same message twice changes nothing and
any order of the same set gives the same journal (see :func:`current_versions`).

No envelope can fail its batch: when the transaction fails with anything but an outage, the envelopes
the database refuses are isolated and dead-lettered one by one and the others committed
(:mod:`engine.store.isolate`). Text the database cannot hold is handled by kind of value
(:mod:`engine.store.text`).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import sqlalchemy as sa
import structlog
from sqlalchemy import event

from engine import identity
from engine.envelope import Envelope
from engine.errors import StoreUnavailable
from engine.outcome import BatchStats, Outcome
from engine.redact import safe_reason
from engine.store import attachments, isolate, keys_async, text
from engine.store import schema as s
from engine.store.bulk import SQLITE_VARS, Bulk, Raced, Row, pg_select_in_args, pg_select_in_sql, select_in
from engine.store.keys_async import AsyncKeyReader
from engine.store.migrations import migrate

if TYPE_CHECKING:
    import psycopg

log = structlog.get_logger("engine.store")
T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def event_us(dt: datetime) -> int:
    return (dt - _EPOCH) // _US


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, pool_size: int = 4, *, autocommit: bool = False) -> sa.Engine:
    """An engine for ``url``; ``autocommit`` (PostgreSQL): every statement commits by itself, so a
    single-statement read costs one round trip (no BEGIN, no ROLLBACK when the connection is returned)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        eng = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(eng, "connect", _sqlite_pragmas)
        return eng
    # no pre-ping (a round trip per checkout): a dropped connection fails its transaction, the pool is
    # invalidated and the worker's retry reconnects
    extra: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, **extra)


class Store:
    """The journal store. One object per process, shared by worker threads (the engine pools)."""

    def __init__(self, url: str, *, pool_size: int = 4, create: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size)
        self.dialect = self.engine.dialect.name
        self._edges = identity.EdgeCache()
        self._bulk = Bulk(self.dialect)
        self._bulk_safe = Bulk(self.dialect, optimistic=False)
        #: PostgreSQL: autocommit connections for the processed-key look-up on an MLLP listener's ACK path
        self._reads = make_engine(url, 2, autocommit=True) if self.dialect == "postgresql" else None
        if create:
            self.migrate()

    # -- lifecycle -------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        try:
            return migrate(self.engine)
        except sa.exc.OperationalError as exc:
            raise StoreUnavailable(f"cannot reach the store ({type(exc.orig).__name__})") from None

    def check(self) -> None:
        try:
            with self.engine.connect() as c:
                c.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot reach the store ({type(exc).__name__})") from None

    def close(self) -> None:
        self.engine.dispose()
        if self._reads is not None:
            self._reads.dispose()

    # -- writing ---------------------------------------------------------------------------
    def commit_batch(self, outcomes: Sequence[Outcome]) -> BatchStats:
        """Write a batch in one transaction; raise StoreUnavailable on a database outage. An envelope the
        database refuses is dead-lettered on its own and the rest committed (``BatchStats.rejected``)."""
        try:
            return self._commit(outcomes)
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one envelope must never stop the feed: isolate it
            total = BatchStats()
            for part in isolate.split(self._commit, self._reject, outcomes, exc):
                total.add(part)
            return total

    def _commit(self, outcomes: Sequence[Outcome]) -> BatchStats:
        stats, edges = self._transaction(lambda conn, bulk: self._write(conn, bulk, outcomes))
        identity.remember(self._edges, edges)
        return stats

    def _reject(self, o: Outcome, exc: Exception) -> BatchStats:
        """Dead-letter ``o`` alone: its envelope made storable (:func:`text.storable_envelope`: an id or any
        other field that does not fit its column is what may have failed the batch) is archived and
        dead-lettered; an envelope already rejected by its mapping keeps its reason. A store that refuses even
        that is not usable: StoreUnavailable (the batch is requeued)."""
        code, reason = (o.reason_code, o.reason) if o.dead else isolate.reason_for(exc)
        env = text.storable_envelope(o.envelope)
        dead = Outcome(env, reason_code=code, reason=safe_reason(reason or code or isolate.CODE))
        log.warning(
            "store.envelope_rejected",
            envelope_id=env.id,
            adapter=env.adapter,
            code=code,
            error_type=isolate.error_type(exc),
            table=isolate.table_of(exc),
        )
        try:
            n = self._transaction(lambda conn, bulk: self._write_rejected(conn, bulk, dead))
        except StoreUnavailable:
            raise
        except Exception as err:  # noqa: BLE001
            raise StoreUnavailable(f"store refused a dead letter ({isolate.error_type(err)})") from None
        return BatchStats(envelopes=1, dead_letters=n, rejected=[] if o.dead else [dead])

    def _write_rejected(self, conn: sa.Connection, bulk: Bulk, dead: Outcome) -> int:
        bulk(conn, s.raw_archive, [_raw_row(dead.envelope)])
        return bulk(conn, s.dead_letters, [_dead_row(dead)])

    def _transaction(self, work: Callable[[sa.Connection, Bulk], T]) -> T:
        """Run ``work`` in one transaction, optimistic first; a lost race redoes it in the safe mode."""
        try:
            return self._attempt(work, self._bulk)
        except Raced as exc:
            log.info("store.insert_raced", table=exc.args[0], blind=exc.args[1])
            return self._attempt(work, self._bulk_safe)

    def _attempt(self, work: Callable[[sa.Connection, Bulk], T], bulk: Bulk) -> T:
        try:
            with self.engine.begin() as conn:
                return work(conn, bulk)
        except Exception as exc:
            why = isolate.outage(exc)  # an outage, or a refusal of every write (isolate's docstring)
            if why is not None:
                raise StoreUnavailable(f"store write failed ({why})") from None
            raise

    def _write(
        self, conn: sa.Connection, bulk: Bulk, outcomes: Sequence[Outcome]
    ) -> tuple[BatchStats, list[tuple[str, str]]]:
        stats = BatchStats(envelopes=len(outcomes))
        bulk(conn, s.raw_archive, [_raw_row(o.envelope) for o in outcomes])
        versions = _version_rows(outcomes, stats)
        stats.versions_new = bulk(conn, s.record_versions, versions)
        stats.versions_unchanged = len(versions) - stats.versions_new
        stats.attachments_new = attachments.write(conn, bulk, outcomes)
        edges = identity.apply_links(
            conn, ((link, o.envelope.id) for o in outcomes if o.result for link in o.result.links), self._edges, bulk
        )
        stats.new_edges = len(edges)
        stats.dead_letters = bulk(conn, s.dead_letters, [_dead_row(o) for o in outcomes if o.dead])
        bulk(conn, s.processed_messages, [_processed_row(o) for o in outcomes if o.envelope.dedup_key])
        replayed = [o.envelope.id for o in outcomes if not o.dead and o.envelope.attributes.get("replay")]
        if replayed:
            dl = s.dead_letters
            conn.execute(
                dl.update().where(dl.c.envelope_id.in_(replayed), dl.c.replayed_at.is_(None)).values(replayed_at=_now())
            )
        return stats, edges

    # -- processed keys (adapters.base.ProcessedKeys) ---------------------------------------
    def async_key_reader(self) -> AsyncKeyReader | None:
        """:meth:`processed_versions` and :meth:`commit_outcomes` for an event loop
        (:mod:`engine.store.keys_async`), on PostgreSQL; None on SQLite, whose look-up is a local file read
        that callers run on a thread."""
        if self.dialect != "postgresql":
            return None
        _, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
        return AsyncKeyReader(kwargs)

    def _read_pg(self, sql: str, args: Sequence[Any]) -> list[Row]:
        """One prepared read on an autocommit connection of ``_reads``; a connection that failed is dropped
        from the pool."""
        assert self._reads is not None
        conn = self._reads.raw_connection()
        try:
            driver: psycopg.Connection[tuple[Any, ...]] | None = conn.driver_connection  # psycopg's own
            assert driver is not None  # a connection just checked out of the pool
            with driver.cursor() as cur:
                cur.execute(sql, args, prepare=True)
                return [tuple(r) for r in cur.fetchall()]
        except Exception:
            conn.invalidate()
            raise
        finally:
            conn.close()

    def remember(self, items: Sequence[tuple[str, str, str, str]]) -> None:
        """Record keys an adapter answered: (dedup_key, envelope_id, ack_code, content_hash). Best effort: the
        worker records them durably with the records. On PostgreSQL the commit does not wait for the WAL
        flush, so it does not queue behind the disk."""
        if items:
            self._transaction(lambda c, bulk: self._remember(c, bulk, items))

    def _remember(self, conn: sa.Connection, bulk: Bulk, rows: Sequence[Row]) -> int:
        if self.dialect == "postgresql":
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        return bulk(conn, s.processed_messages, rows)

    # -- reading ---------------------------------------------------------------------------
    def citizen(self, query: str) -> identity.Citizen | None:
        with self.engine.connect() as c:
            return identity.resolve(c, query)

    def versions_for(self, subject_keys: Iterable[str]) -> list[dict[str, Any]]:
        rv = s.record_versions
        keys = list(subject_keys)
        out: list[dict[str, Any]] = []
        with self.engine.connect() as c:
            for i in range(0, len(keys), 500):
                q = sa.select(rv).where(rv.c.subject_key.in_(keys[i : i + 500]))
                out.extend(dict(r._mapping) for r in c.execute(q))
        return out

    def all_versions(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(sa.select(s.record_versions))]

    def attachment(self, sha256: str) -> tuple[str, bytes] | None:
        """(content type, bytes) of the stored attachment ``sha256`` (hex, any case), or None.

        The store's read side knows no user: whoever calls this reads with the engine's store credentials.
        ``enjournal attachment`` is the operator's own access, like ``enjournal journal``; a service that
        serves attachments to others must check access and audit each read before calling it."""
        with self.engine.connect() as c:
            return attachments.read(c, sha256)

    def attachment_subject(self, sha256: str) -> str | None:
        """The subject key of the record that first brought the attachment ``sha256`` (whose it is), or None."""
        with self.engine.connect() as c:
            return attachments.subject(c, sha256)

    def attachments_stored(self, sha256s: Iterable[str]) -> set[str]:
        """Which of ``sha256s`` the store holds the bytes of (one query, chunked on SQLite; no bytes read)."""
        with self.engine.connect() as c:
            return attachments.stored(c, list(sha256s))

    def archived(self, envelope_id: str) -> Envelope | None:
        t = s.raw_archive
        with self.engine.connect() as c:
            r = c.execute(sa.select(t).where(t.c.envelope_id == envelope_id)).first()
        if r is None:
            return None
        m = dict(r._mapping)
        headers = {
            k: m[k]
            for k in (
                "adapter",
                "mapping",
                "source_system",
                "content_type",
                "charset",
                "received_at",
                "sha256",
                "trace_id",
                "dedup_key",
                "attributes",
            )
        }
        headers["id"] = m["envelope_id"]
        return Envelope.from_headers(headers, bytes(m["raw"]))

    def dead_letters(self, limit: int = 100, include_replayed: bool = False) -> list[dict[str, Any]]:
        t = s.dead_letters
        q = sa.select(t).order_by(t.c.dead_at.desc()).limit(limit)
        if not include_replayed:
            q = q.where(t.c.replayed_at.is_(None))
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(q)]

    def counts(self, heavy: bool = True) -> dict[str, Any]:
        """Open dead letters per adapter and identity conflicts (small tables); ``heavy`` adds envelopes
        received per adapter and records per kind (scans of the journal's largest tables)."""
        ra, dl, rv, ic = s.raw_archive, s.dead_letters, s.record_versions, s.identity_conflicts
        with self.engine.connect() as c:
            dead: dict[str, int] = dict(
                c.execute(
                    sa.select(dl.c.adapter, sa.func.count()).where(dl.c.replayed_at.is_(None)).group_by(dl.c.adapter)
                ).all()
            )
            conflicts = int(c.execute(sa.select(sa.func.count()).select_from(ic)).scalar() or 0)
            out: dict[str, Any] = {"dead_letters": dead, "conflicts": conflicts}
            if heavy:
                out["received"] = dict(c.execute(sa.select(ra.c.adapter, sa.func.count()).group_by(ra.c.adapter)).all())
                out["records"] = dict(
                    c.execute(
                        sa.select(rv.c.kind, sa.func.count(sa.distinct(rv.c.record_key))).group_by(rv.c.kind)
                    ).all()
                )
        return out

    # -- processed keys by content, commit outcomes (the MLLP listener's look-ups) --------------
    def processed_versions(self, dedup_keys: Sequence[str]) -> keys_async.Versions:
        """Every stored content of any of ``dedup_keys``: ``{key: {content_hash: (envelope_id, ack_code)}}``,
        in one driver-level query (chunked on SQLite). An MLLP listener asks for every new message while it
        publishes it, so this is on the ACK path: on PostgreSQL it is one prepared statement on an
        autocommit connection (a pooled connection's transaction would add a BEGIN and a ROLLBACK round
        trip, each costing the listener more CPU than the look-up itself)."""
        keys, out, by = list(dedup_keys), keys_async.OUT, keys_async.BY
        if not keys:
            return {}
        if self._reads is None:
            with self.engine.connect() as c:
                return keys_async.versions(select_in(c, s.processed_messages, out, by, keys))
        return keys_async.versions(
            self._read_pg(pg_select_in_sql(s.processed_messages, out, by), pg_select_in_args(by, keys))
        )

    def processed_contents(self, pairs: Sequence[tuple[str, str]]) -> list[keys_async.Content]:
        """Per (dedup key, content hash), in order: the stored (envelope_id, ack_code) of that content, and an
        envelope of another content under the key (a reused control id); one row per pair however many
        contents the key holds. On the MLLP listener's ACK path, like :meth:`processed_versions`."""
        asked = list(pairs)
        if not asked:
            return []
        if self._reads is not None:
            return keys_async.contents(self._read_pg(*keys_async.contents_sql_args(asked)))
        rows: list[Row] = []
        step = SQLITE_VARS // 3
        with self.engine.connect() as c:
            for i in range(0, len(asked), step):
                part = asked[i : i + step]
                args = tuple(x for j, (k, h) in enumerate(part) for x in (j, k, h))
                rows += c.exec_driver_sql(keys_async.contents_sql_sqlite(len(part)), args).all()
        return keys_async.contents(rows)

    def commit_outcomes(self, envelope_ids: Sequence[str]) -> dict[str, str | None]:
        """Which of ``envelope_ids`` a worker committed: ``{id: None}`` when mapped, ``{id: reason_code}`` when
        dead-lettered; ids not committed yet are absent. One query (chunked on SQLite)."""
        ids = list(envelope_ids)
        if not ids:
            return {}
        if self._reads is not None:
            return keys_async.outcomes(self._read_pg(*keys_async.outcome_sql_args(ids)))
        rows: list[Row] = []
        with self.engine.connect() as c:
            for i in range(0, len(ids), SQLITE_VARS):
                part = ids[i : i + SQLITE_VARS]
                rows += c.exec_driver_sql(
                    f"SELECT {keys_async.OUTCOME_COLS} FROM {keys_async.OUTCOME_FROM} "
                    f"WHERE r.envelope_id IN ({','.join('?' * len(part))})",
                    tuple(part),
                ).all()
        return keys_async.outcomes(rows)


def current_versions(rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split versions into (current per record key, history): newest event time, then the clinically later
    status (preliminary < final < corrected < cancelled: a lab that stamps to the second may send a final in
    the second of its preliminary), then highest hash.

    A cancelled record also cancels its parts: every current record of the same subject whose key
    starts with ``<its key>:``, or (a cancelled report) whose content names it as its ``report_key``, and
    whose event time is not newer (a whole-report cancellation that cannot name its items). The result is
    still a pure function of the set of versions.
    """
    best: dict[str, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    for r in rows:
        cur = best.get(r["record_key"])
        if cur is None:
            best[r["record_key"]] = r
        elif precedence(r) > precedence(cur):
            history.append(cur)
            best[r["record_key"]] = r
        else:
            history.append(r)
    _cascade_cancellations(best)
    return sorted(best.values(), key=lambda r: (r["event_us"], r["record_key"])), history


#: at one event time, the status a source sends later in a result's life wins
_STATUS_RANK = {"preliminary": 0, "final": 1, "corrected": 2, "cancelled": 3}


def precedence(r: dict[str, Any]) -> tuple[int, int, str]:
    """Sort key of a record's versions: the highest is current (event time, then status, then hash)."""
    return r["event_us"], _STATUS_RANK.get(r["status"], 1), r["version_hash"]


def _cascade_cancellations(best: dict[str, dict[str, Any]]) -> None:
    keys = sorted(best)
    for parent in [r for r in best.values() if r["status"] == "cancelled"]:
        prefix = parent["record_key"] + ":"
        i = bisect.bisect_left(keys, prefix)
        while i < len(keys) and keys[i].startswith(prefix):
            _cancel(best, keys[i], parent)
            i += 1
        if parent["kind"] == "report":
            needle = '"report_key":' + orjson.dumps(parent["record_key"]).decode()
            for key, child in list(best.items()):
                if child["subject_key"] == parent["subject_key"] and needle in child["content"]:
                    _cancel(best, key, parent)


def _cancel(best: dict[str, dict[str, Any]], key: str, parent: dict[str, Any]) -> None:
    """Mark the current version of ``key`` cancelled by ``parent`` when it is about the same subject, not
    cancelled already and not newer than the cancellation."""
    child = best[key]
    if (
        child["subject_key"] == parent["subject_key"]
        and child["status"] != "cancelled"
        and child["event_us"] <= parent["event_us"]
    ):
        best[key] = {**child, "status": "cancelled", "cancelled_by": parent["record_key"]}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _raw_row(env: Envelope) -> Row:
    """A raw_archive row; received_at and attributes as in ``Envelope.headers()`` (without building them all)."""
    return (
        env.id,
        env.adapter,
        env.mapping,
        env.source_system,
        env.content_type,
        env.charset,
        env.received_at.isoformat(),
        env.sha256,
        env.trace_id,
        env.dedup_key,
        orjson.dumps(env.attributes).decode(),
        env.raw,
    )


def _version_rows(outcomes: Sequence[Outcome], stats: BatchStats) -> list[Row]:
    """record_versions rows (each record's content serialised and hashed once, here, next to its writing:
    the bytes are in cache); counts the records per kind. Text the journal cannot hold raises
    :class:`text.TextNotStorable` (NUL in content, a key, a subject or a source id that does not fit); a
    reference to attachment bytes the message does not carry raises :class:`attachments.AttachmentInvalid`."""
    rows: list[Row] = []
    by_kind = stats.by_kind
    # the records of one message mostly share their subject, event time and source id (the same
    # objects): convert and check each once
    subject: Any = None
    when: Any = None
    source: Any = None
    key_fits, subject_fits, source_fits = text.key_fits, text.subject_fits, text.source_fits
    for o in outcomes:
        result = o.result
        if result is None:
            continue
        env = o.envelope
        contents = [rec.content_json() for rec in result.records]
        # NUL shows as a JSON escape: no backslash, no NUL. One search of the joined bytes costs less than
        # a search per content (each call's overhead outweighs copying a message's few KB).
        joined = b"".join(contents)
        if b"\\" in joined:
            text.check(result, contents)
        if attachments.REF_MARK in joined and not result.attachments:  # references to bytes not carried
            attachments.check_refs(result)
        for rec, content in zip(result.records, contents, strict=True):
            kind, key, sid = rec.kind, rec.key, rec.provenance.source_message_id
            by_kind[kind] = by_kind.get(kind, 0) + 1
            if rec.subject is not subject:
                subject, subject_key = rec.subject, rec.subject.key
                if not subject_fits(subject_key):
                    raise text.reject(result, contents)
            if sid is not source:
                source = sid
                if not source_fits(sid):
                    raise text.reject(result, contents)
            if not key_fits(key):
                raise text.reject(result, contents)
            if rec.event_time is not when:
                when, when_us = rec.event_time, event_us(rec.event_time)
            rows.append(
                (
                    key,
                    hashlib.sha256(content).hexdigest()[:32],
                    kind,
                    subject_key,
                    when_us,
                    rec.status.value,
                    content.decode(),
                    env.id,
                    env.adapter,
                    sid,
                )
            )
    return rows


def _dead_row(o: Outcome) -> Row:
    """A dead_letters row (rare): the reason code and text made storable (the envelope is already)."""
    code = text.fit(o.reason_code or isolate.CODE, text.DEAD_CODE)
    return (o.envelope.id, o.envelope.adapter, code, text.fit(o.reason or code), _now(), None)


def _processed_row(o: Outcome) -> Row:
    """A processed_messages row: the sender's key, the envelope, the ACK code and the content hash."""
    ack = o.envelope.attributes.get("ack") or ("AR" if o.dead else "AA")
    return (o.envelope.dedup_key, o.envelope.id, ack, keys_async.content_hash(o.envelope))
