"""Publishing for the CSV import: a group of envelopes with retries, and a file that cannot be imported as
one rejected envelope (:mod:`adapters.rejected_file`) before it moves to ``error/``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from adapters.base import AdapterRuntime
from adapters.csv.options import CsvOptions
from adapters.files import InboxFile, move_to_error
from adapters.handoff import Handoff
from adapters.rejected_file import rejected_file
from engine.envelope import Envelope
from engine.errors import BusUnavailable, PermanentError
from engine.ids import log_safe
from engine.rejection import Rejection

CONTENT_TYPE = "text/csv"


def envelope_id(adapter: str, sha256: str, part: str) -> str:
    """A deterministic envelope id: the same file and part give the same id, so a republish is absorbed."""
    return log_safe(hashlib.sha256(f"{adapter}|{sha256}|{part}".encode()).hexdigest()[:32])


def publish(handoff: Handoff, envelopes: Sequence[Envelope], attempts: int) -> None:
    """Publish and wait for the confirm, retrying an unavailable bus ``attempts`` times in all, with a
    backoff; raises :class:`BusUnavailable` when it stays down."""
    for attempt in Retrying(
        retry=retry_if_exception_type(BusUnavailable),
        reraise=True,
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=10),
    ):
        with attempt:
            handoff.publish(envelopes)


def reject_file(
    name: str, settings: CsvOptions, runtime: AdapterRuntime, path: Path, f: InboxFile, exc: PermanentError
) -> bool:
    """Publish the inbox file ``f`` that cannot be imported (``exc``) as one rejected envelope with its code,
    its bytes up to :attr:`CsvOptions.envelope_bytes`, then, after the confirm, move it to ``error/`` with its
    ``.reason`` file. False when it changed while it was read (it stays, read again at the next poll).
    Raises :class:`BusUnavailable` when the bus stays down (nothing moved: the file stays for the next
    poll) and ``OSError`` when it cannot be read or moved (it stays)."""
    rejection = Rejection.from_reason(exc.reason)
    with f.reopen() as reader:
        out = rejected_file(reader, f, rejection, settings.envelope_bytes, "max_line_bytes")
    if out is None:
        return False
    sha = hashlib.sha256(out.raw).hexdigest()
    env = Envelope.build(
        out.raw,
        adapter=name,
        mapping=settings.mapping,
        content_type=CONTENT_TYPE,
        source_system=settings.source_system,
        attributes={"file": path.name, "scope": "file"},
        # this very file (inode, mtime) published again after a failed move or a crash is absorbed
        id=envelope_id(name, sha, f"file|{f.inode}|{f.mtime_ns}"),
        rejection=out.rejection,
    )
    publish(Handoff(name, runtime.bus, "csv"), [env], settings.publish_attempts)
    move_to_error(path, settings, exc.reason)
    return True


__all__ = ["CONTENT_TYPE", "envelope_id", "publish", "reject_file"]
