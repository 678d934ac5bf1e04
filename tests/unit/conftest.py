"""Unit tests that need a bus and a store get the embedded bus and a SQLite store (real, on disk)."""

from __future__ import annotations

import pytest


@pytest.fixture
def bus(embedded_bus: object) -> object:
    return embedded_bus


@pytest.fixture
def store(sqlite_store: object) -> object:
    return sqlite_store
