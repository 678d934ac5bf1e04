"""MLLP listener (``type: mllp``): HL7 v2.1-2.8 over TCP/TLS, original and enhanced acknowledgements.

Receives MLLP frames (``<VT> message <FS><CR>``) on many concurrent connections, many messages
per connection (pipelined, answered in order). Each message's MSH decides its answer
(:mod:`adapters.hl7_intake.triage`); every message, rejected ones too, is published on the bus as an
envelope (``content_type: application/hl7-v2``, charset from MSH-18, ``dedup_key`` =
``HL7|MSH-3|MSH-4|MSH-10`` with control characters escaped), and the ACK is sent only after the broker
confirmed it (:mod:`adapters.mllp.publisher`). The adapter never maps.

* **Duplicates**: a resend of the same bytes under the same key is answered with its original code and not
  published again. Other bytes under a key already seen are a different message: published and
  processed like any other, flagged ``control_id_reused`` (see :mod:`adapters.mllp.publisher`).
* **ack_after**: ``broker`` (default): AA once the broker confirmed the envelope. ``commit``: AA only once
  a worker committed it to the journal, AE with an ERR segment (the dead letter's reason code) when the
  mapping rejected it; no commit within ``commit_timeout`` closes the connection without an answer, like
  an unconfirmed publish, and the sender's resend is answered once the original is committed
  (:mod:`adapters.mllp.server`, :mod:`adapters.mllp.commits`).
* **Enhanced mode** (MSH-15/16): the accept ACK after the confirm (``ack_after: commit``: after the commit),
  the application ACK, as MSH-16 asks, once the commit outcome is known (in ``broker`` mode too).
* **Self-protection**: ``idle_timeout`` also within a frame, ``frame_timeout`` for a whole frame,
  ``max_buffered_bytes`` per connection, ``max_connections`` (beyond it a connection is closed at once),
  a back-off when ``accept`` runs out of descriptors (:mod:`adapters.mllp.accept`), and asyncio's own
  error reports logged by type only (:mod:`adapters.mllp.loop_errors`). Memory held for connections is
  at most about ``max_connections`` x (``max_buffered_bytes`` + ``max_message_bytes``).

Example::

    adapters:
      lab-mllp:
        type: mllp
        host: 0.0.0.0
        port: 2575
        mapping: hl7v2
        source_system: dips-lab
        accepted_types: [ADT, ORU, MDM]
        max_message_bytes: 8388608     # one message; unset: what one bus message carries
        idle_timeout: 300
        max_connections: 512
        ack_after: broker              # or commit: AA only after the journal commit
        tls: {certfile: mllp.crt, keyfile: mllp.key, cafile: senders-ca.crt}

Package layout: ``options`` (the settings), ``adapter`` (the listener: start, serve, drain), ``framing``
(MLLP bytes), ``publisher`` (batched confirms, duplicates), ``paths`` (how it reaches the bus and the
store from its event loop), ``commits`` (waiting for the journal commit), ``lookups`` (the store look-ups
both share), ``server`` (one connection), ``accept`` (sockets, the open connections and their limit,
descriptor back-off), ``loop_errors``, ``memory`` (heap trim after big partial frames), ``tls``,
``client`` (a small sender for tests and the benchmark). The MSH checks, the envelope and the ACK itself
are shared with the HL7 file adapter (:mod:`adapters.hl7_intake`).
"""

from __future__ import annotations

from typing import Literal

from adapters.base import Adapter, AdapterRuntime
from adapters.mllp.adapter import MllpAdapter
from adapters.mllp.options import MllpOptions


class Settings(MllpOptions):
    type: Literal["mllp"]


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> Adapter:
    return MllpAdapter(name, settings, runtime)


__all__ = ["MllpAdapter", "Settings", "build"]
