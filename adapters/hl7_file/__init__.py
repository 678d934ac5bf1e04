"""HL7 v2 file adapter (``type: hl7-file``): files of one or many HL7 v2.1-2.8 messages in a directory.

A file may hold one message, many messages, or FHS/BHS batches; segments end in CR, LF or CRLF;
blank lines and ``//`` comments are ignored (:mod:`mappings.hl7v2.batch`). Config::

    adapters:
      lab-files:
        type: hl7-file
        directory: /srv/enjournal/in/lab
        pattern: "*.hl7"
        mapping: hl7v2
        source_system: lab
        default_charset: iso-8859-1   # when MSH-18 is empty
        accepted_types: [ADT, ORU, MDM]
        max_message_bytes: 8388608    # one message (unset: what one bus message carries); larger: dead-lettered
        incomplete_grace_seconds: 60  # unchanged this long before a cut-looking batch file is handled

For each stable file (never one still being written), opened without following a symlink and only if
it is a regular file (:class:`adapters.inbox.Inbox`: anything else moves to ``error/`` unread), read as a
stream (:mod:`adapters.hl7_file.stream`: memory does not grow with the size of the file):

* every message is triaged like an MLLP message (:mod:`adapters.hl7_intake.triage`: MSH readable, type
  accepted, optional strict check) and becomes one envelope (``content_type="application/hl7-v2"``,
  charset from MSH-18, ``dedup_key`` ``HL7|MSH-3|MSH-4|MSH-10``, attributes ``file``, ``index``
  (0-based position in the file), ``count`` (on the envelopes of the file's last publish group: all of
  them for a file of up to ``publish_group_messages`` messages / ``publish_group_bytes``) and
  ``charset_repaired`` when the bytes were not in the declared charset); a bad message carries
  ``reject = "CODE: text"`` and is dead-lettered by the worker while the good ones go through;
* messages are published in groups, one in flight while the next is read; only after every group was
  confirmed does the file move to ``archive/``, with a ``.reason`` file listing the rejected positions
  and codes and the file-level problems (never content) when there were any. A crash or a bus failure
  in between leaves the file, which is published again whole (the journal absorbs the repeat);
* a message over ``max_message_bytes`` is rejected once (``HL7_MESSAGE_TOO_LARGE``, sizes only,
  dead-lettered without its bytes) and its neighbours go through;
* batch integrity (:mod:`mappings.hl7v2.batch`): the message left open where a FHS/BHS file ends
  without its BTS/FTS is rejected as ``HL7_BATCH_TRUNCATED``, never mapped; a BTS-1/FTS-1 count that
  does not match is ``HL7_BATCH_COUNT_MISMATCH`` (the intact messages go through). Both are in the
  ``.reason`` file and the dead letters. A file that looks cut is left alone until it has been unchanged
  for ``incomplete_grace_seconds`` (its writer may only be pausing:
  :meth:`adapters.inbox.Inbox.still_arriving`); a file that changed while it was read is left for the
  next poll;
* a file with no message at all (empty, random bytes, no MSH), once it has been unchanged for
  ``incomplete_grace_seconds`` (an empty or half-written file may be growing), is published once as one
  envelope with ``rejection`` ``HL7_NO_MSH`` and attributes ``file`` and ``scope=file``, carrying its bytes
  (without them when it is larger than ``max_message_bytes``): the worker archives and dead-letters it, so
  ``enjournal dead-letters`` shows it (:mod:`adapters.rejected_file`). Only after the confirm does it move
  to ``error/`` with a ``.reason`` file; if the bus is unavailable it stays and is tried again at the next
  poll. A file larger than ``max_file_bytes`` moves to ``error/`` at once, unread and unpublished;
* a file whose envelopes were all confirmed but which cannot be moved (``archive/`` or ``error/`` full or
  not writable) is remembered as published (:class:`adapters.inbox.Unfinished`): it is not published again
  while it is unchanged; only the move is retried, with a backoff, logged ``archive.unavailable`` once
  and ``archive.available`` when it works again. A file that changed after it was read is never
  archived for what was published: it is read again whole at the next poll.
"""

from __future__ import annotations

from typing import Literal

from adapters.base import Adapter, AdapterRuntime
from adapters.hl7_file.adapter import Hl7FileAdapter
from adapters.hl7_file.options import Hl7FileOptions


class Settings(Hl7FileOptions):
    type: Literal["hl7-file"] = "hl7-file"


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> Adapter:
    return Hl7FileAdapter(name, settings, runtime)


__all__ = ["Hl7FileAdapter", "Settings", "build"]
