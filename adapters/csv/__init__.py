"""CSV export adapter: picks up delimited exports from a directory (cron or continuous polling),
validates rows, publishes chunks of rows, resumes after a crash, writes reject reports.

Supports ``;`` ``,`` and tab (sniffed or configured), UTF-8 (with or without BOM), Windows-1252 and
ISO-8859-1, quoted fields with embedded newlines. The rows are mapped by the worker with the
declarative mapping :mod:`mappings.csv_decl`; this adapter only checks the rows that decide a reject.

A file that cannot be imported at all (``CSV_EMPTY``: no header line; ``MISSING_COLUMN``: a header without
the spec's columns, as random bytes give; ``ENCODING_ERROR``; ``CSV_MALFORMED``; ``CSV_LINE_TOO_LONG`` for
its header) is published once as one envelope with that code as its ``rejection`` and attributes ``file``
and ``scope=file``, carrying its bytes (without them when they exceed the largest envelope, which
``max_line_bytes`` sets): the worker archives and dead-letters it, so ``enjournal dead-letters`` shows it.
Only after the confirm does it move to ``error/`` with a ``.reason`` file; if the bus is down it stays for
the next poll. A file with no header yet, or a header cut short, is given ``incomplete_grace_seconds``
first (its writer may be pausing); a file over ``max_file_bytes`` moves to ``error/`` unread and
unpublished (``FILE_TOO_LARGE``). Config example (under ``adapters:``)::

    care-decisions:
      type: csv
      directory: /srv/enjournal/in/vedtak
      pattern: "vedtak_*.csv"
      schedule: "30 2 * * *"          # 02:30 Europe/Oslo; omit to poll continuously
      encoding: auto                  # utf-8 / utf-8-sig / cp1252 / iso-8859-1
      batch_rows: 500
      max_line_bytes: 1048576         # a longer record is rejected (CSV_LINE_TOO_LONG), never read whole
      spec:
        kind: care_event
        key: [vedtak_id]
        subject: {national: fnr, scope: kommune-x}
        event_time: {column: vedtaksdato, formats: [dd.mm.yyyy]}
        fields: {event_code: {column: tjeneste, table: tjenester}}
        tables: {tjenester: {path: deploy/csv/tables/tjenester.csv, system: "2.16.578.1.12.4.1.1.9151"}}
"""

from __future__ import annotations

from typing import Literal

from adapters.base import Adapter, AdapterRuntime
from adapters.csv.adapter import CsvAdapter
from adapters.csv.options import CsvOptions


class Settings(CsvOptions):
    type: Literal["csv"] = "csv"


def build(name: str, settings: Settings, runtime: AdapterRuntime) -> Adapter:
    return CsvAdapter(name, settings, runtime)


__all__ = ["CsvAdapter", "Settings", "build"]
