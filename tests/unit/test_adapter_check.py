"""``check()`` of the directory adapters writes nothing: it reports what ``run()`` would need as a ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import registry
from engine.errors import ConfigError
from tests.integration.inbox_kinds import KINDS, Runtime, settings


def _check(kind: str, root: Path, **extra: object) -> None:
    registry.adapter(kind).build(f"{kind}-t", settings(kind, root, **extra), Runtime(None)).check()


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_inbox_is_reported_not_created(kind: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"adapter '{kind}-t': directory .* does not exist"):
        _check(kind, tmp_path)
    assert _tree(tmp_path) == []


@pytest.mark.parametrize("kind", KINDS)
def test_check_creates_nothing(kind: str, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    _check(kind, tmp_path)
    assert _tree(tmp_path) == ["in"]  # archive/, error/, the outbox and the state: created by run()


@pytest.mark.parametrize("kind", KINDS)
def test_a_directory_that_cannot_be_one_is_reported(kind: str, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "taken").write_text("a file, not a directory")
    with pytest.raises(ConfigError, match="error_dir .* is not a directory"):
        _check(kind, tmp_path, error_dir=str(tmp_path / "taken"))
    with pytest.raises(ConfigError, match="archive_dir .* cannot be created"):
        _check(kind, tmp_path, archive_dir=str(tmp_path / "taken" / "archive"))
    assert _tree(tmp_path) == ["in", "taken"]
