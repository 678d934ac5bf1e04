"""Tables of the journal store.

* ``raw_archive``: every envelope's bytes exactly as received, found by envelope id (the primary key)
  and replayable.
* ``record_versions``: every version of every canonical record (key + content hash). The current
  version of a record is the one with the newest source event time, ties broken by the hash: a pure
  function of the set of versions, so any order and any repetition give the same journal.
* ``identifiers`` / ``identity_edges`` / ``identity_conflicts``: the identity graph. A citizen is a
  connected component; ``identifiers.component`` is the smallest identifier key in it.
* ``dead_letters``: envelopes that could not be mapped, with a stable reason code.
* ``fhir_ids``: the FHIR id the read side gave a record or a citizen (a digest of its key, so a key's
  characters and personal data never reach a URL) -> that key. Written when the id is first served: a
  client only knows ids it was served.
* ``processed_messages``: sender-side message keys (HL7 app|facility|MSH-10) with the content hash of the
  message (the first 32 hex digits of its sha256) and the ACK code given. One row per key and content: a
  key with two rows is a control id a sender used again for different content. Rows from before
  migration 3 whose envelope was not archived carry the hash ``''`` (content unknown), which matches no
  message.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

raw_archive = sa.Table(
    "raw_archive",
    metadata,
    sa.Column("envelope_id", sa.String(64), primary_key=True),
    sa.Column("adapter", sa.String(200), nullable=False),
    sa.Column("mapping", sa.String(200), nullable=False),
    sa.Column("source_system", sa.String(200)),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("charset", sa.String(50)),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("trace_id", sa.String(64)),
    sa.Column("dedup_key", sa.String(400)),
    sa.Column("attributes", sa.Text),
    sa.Column("raw", sa.LargeBinary, nullable=False),
)

record_versions = sa.Table(
    "record_versions",
    metadata,
    sa.Column("record_key", sa.String(500), primary_key=True),
    sa.Column("version_hash", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("subject_key", sa.String(300), nullable=False),
    sa.Column("event_us", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("envelope_id", sa.String(64), nullable=False),
    sa.Column("adapter", sa.String(200), nullable=False),
    sa.Column("source_message_id", sa.String(200)),
    sa.Index("ix_record_versions_subject", "subject_key"),
)

identifiers = sa.Table(
    "identifiers",
    metadata,
    sa.Column("id_key", sa.String(300), primary_key=True),
    sa.Column("system", sa.String(200), nullable=False),
    sa.Column("value", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("component", sa.String(300), nullable=False),
    sa.Index("ix_identifiers_component", "component"),
    sa.Index("ix_identifiers_value", "value"),
)

identity_edges = sa.Table(
    "identity_edges",
    metadata,
    sa.Column("a_key", sa.String(300), primary_key=True),
    sa.Column("b_key", sa.String(300), primary_key=True),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("envelope_id", sa.String(64), nullable=False),
)

identity_conflicts = sa.Table(
    "identity_conflicts",
    metadata,
    sa.Column("a_key", sa.String(300), primary_key=True),
    sa.Column("b_key", sa.String(300), primary_key=True),
    sa.Column("envelope_id", sa.String(64), nullable=False),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("envelope_id", sa.String(64), primary_key=True),
    sa.Column("adapter", sa.String(200), nullable=False),
    sa.Column("reason_code", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("dead_at", sa.String(40), nullable=False),
    sa.Column("replayed_at", sa.String(40)),
    sa.Index("ix_dead_letters_adapter", "adapter"),
)

processed_messages = sa.Table(
    "processed_messages",
    metadata,
    sa.Column("dedup_key", sa.String(400), primary_key=True),
    sa.Column("envelope_id", sa.String(64), nullable=False),
    sa.Column("ack_code", sa.String(4), nullable=False),
    sa.Column("content_hash", sa.String(32), primary_key=True),
)

fhir_ids = sa.Table(
    "fhir_ids",
    metadata,
    sa.Column("fhir_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("key", sa.String(500), nullable=False),
)

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
)
