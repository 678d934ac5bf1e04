"""KITH file adapter: KITH / e-helse XML documents dropped in a directory, answered with AppRec 1.1.

Supports standalone ``Message`` documents (Svarrapport, Rekvisisjon, Epikrise, Henvisning 1.x), ``MsgHead``
v1.2 and MsgHead inside a receiver's wrapper (NAV ``EI_fellesformat``), ISO-8859-1 or UTF-8 with or
without BOM/declaration. Config example::

    adapters:
      kith-inbox:
        type: kith-file
        mapping: kith
        directory: /srv/enjournal/in/kith
        outbox: /srv/enjournal/out/apprec     # AppRec receipts (must not be the input directory)
        validate_xsd: true                    # schemas shipped in adapters/kith_file/schemas (or xsd_dir)
        receipt_sync: auto                    # auto | syncfs | fsync: how a batch's AppRecs are made durable
        sender_her_id: "12345"                # our identity when the message does not name its receiver

For each stable regular file (never one still being written, never a symlink or a FIFO: see
:mod:`adapters.inbox`): read the bytes, run the checks of
:func:`adapters.kith_file.inspection.inspect`, publish one envelope (``content_type="application/xml; kith"``,
attributes ``file``, ``shape``, ``msg_type``, ``msg_id``, ``charset_repaired`` when the bytes did not fit
the declared charset (read with the one that fits, :mod:`mappings.kith.xml`), and a ``rejection`` (code and
text) when the document is rejected; the worker dead-letters those without mapping) — the stable files of one poll
go out together, up to ``max_batch`` per publish, so one confirm covers them all — and **only after
the broker confirmed** write the AppRecs to the outbox (all receipts of a batch are fsynced together,
see :mod:`adapters.durable`) and move the file to ``archive/`` (accepted) or ``error/``
with a ``.reason`` file (rejected). If the bus is down the file stays and is retried at the next poll,
with no receipt. A received AppRec is published and archived but never answered. A file larger than
``max_bytes`` (or ``max_file_bytes``) is not read: it gets an AppRec status 2 and moves to ``error/`` without a
publish, so it is never published whole into the archive.
A document that is not well-formed or empty may be a file still being written: it is rejected only
once it has been unchanged for ``incomplete_grace_seconds`` (:meth:`adapters.inbox.Inbox.still_arriving`).

Once a file is published (confirmed) it is not published again while only its receipt or its move
fails (outbox not writable, archive full): the adapter remembers it (:class:`adapters.inbox.Unfinished`:
path and inode, size, mtime -> envelope and AppRec) and retries the receipt and the move with a backoff,
logging
``outbox.unavailable`` / ``archive.unavailable`` once when that starts and ``outbox.available`` /
``archive.available`` when it works again. After a restart such a file is published once more, which
the journal absorbs (same record keys). A file that changed after it was read is not moved for what was
published: it is read again whole (and answered again) at the next poll. One log line per file says what became of it
(``kith.archived`` or ``kith.rejected``, with the receipt); files are named by
:func:`engine.redact.file_ref` in logs.
"""

from __future__ import annotations

from typing import Literal

from adapters.base import Adapter, AdapterRuntime
from adapters.kith_file.adapter import KithFileAdapter
from adapters.kith_file.options import KithFileOptions


class Settings(KithFileOptions):
    type: Literal["kith-file"] = "kith-file"


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> Adapter:
    return KithFileAdapter(name, settings, runtime)


__all__ = ["KithFileAdapter", "Settings", "build"]
