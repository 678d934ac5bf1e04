"""Code translation tables for the declarative CSV mapping, loaded once when the options are built.

A table file is either CSV (header ``local;code;display``, delimiter sniffed, UTF-8 or cp1252) or
YAML (``{local: code}`` or ``{local: {code: ..., display: ...}}``). The loaded codes go into the
mapping options, so the mapping itself never reads a file.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml

from adapters.csv.reader import open_csv, scan
from engine.errors import ConfigError, EnjournalError


def load_table(path: Path) -> dict[str, dict[str, str]]:
    """``{local: {"code": ..., "display": ...}}`` from a CSV or YAML file; ConfigError when unusable."""
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return _from_yaml(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, path)
        return _from_csv(path)
    except (OSError, yaml.YAMLError, EnjournalError, csv.Error, UnicodeDecodeError):
        raise ConfigError(f"code table {path}: cannot be read") from None


def _from_yaml(data: Any, path: Path) -> dict[str, dict[str, str]]:
    if not isinstance(data, dict):
        raise ConfigError(f"code table {path}: must be a mapping of local code -> code")
    out: dict[str, dict[str, str]] = {}
    for k, v in data.items():
        entry = v if isinstance(v, dict) else {"code": v}
        out[str(k)] = {kk: str(vv) for kk, vv in entry.items() if vv is not None}
    return out


def _from_csv(path: Path) -> dict[str, dict[str, str]]:
    facts = scan(path)
    out: dict[str, dict[str, str]] = {}
    with open_csv(path, facts.encoding) as f:
        cols = f.header
        if "local" not in cols or "code" not in cols:
            raise ConfigError(f"code table {path}: needs the columns 'local' and 'code'")
        li, ci = cols.index("local"), cols.index("code")
        di = cols.index("display") if "display" in cols else None
        for _, row in f.rows():
            row = row + [""] * (len(cols) - len(row))
            entry = {"code": row[ci].strip()}
            if di is not None and row[di].strip():
                entry["display"] = row[di].strip()
            out[row[li].strip()] = entry
    return out
