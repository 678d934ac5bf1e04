"""The suite itself: a plugin it cannot drive fails with what to add, never passes or skips unseen."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel

from tests.contract.conftest import adapter_settings_classes, good_samples, mapping_names
from tests.contract.drivers import FileDrop, driver_for


class _SocketSettings(BaseModel):
    type: Literal["carrier-pigeon"] = "carrier-pigeon"
    mapping: str = "hl7v2"
    host: str = "127.0.0.1"


class _DirectorySettings(_SocketSettings):
    directory: str


def test_an_adapter_kind_without_a_driver_fails_saying_what_to_add() -> None:
    with pytest.raises(pytest.fail.Exception, match="Add a driver to DRIVERS in tests/contract/drivers.py"):
        driver_for("carrier-pigeon", _SocketSettings)


def test_an_adapter_polling_a_directory_is_driven_without_an_edit() -> None:
    assert isinstance(driver_for("carrier-pigeon", _DirectorySettings), FileDrop)


def test_a_mapping_without_fixture_pairs_fails_saying_what_to_add() -> None:
    with pytest.raises(pytest.fail.Exception, match="tests/fixtures/no-such-mapping/"):
        good_samples("no-such-mapping")


def test_the_registries_are_not_empty() -> None:
    assert {"hl7-file", "mllp", "kith-file", "csv"} <= set(adapter_settings_classes())
    assert {"hl7v2", "kith", "csv"} <= set(mapping_names())
