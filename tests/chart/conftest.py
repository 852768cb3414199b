"""Chart renders shared by tests/chart: default values and tests/chart/full-values.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import support

FULL_VALUES = Path(__file__).with_name("full-values.yaml")


@pytest.fixture(scope="session")
def full_values() -> dict[str, Any]:
    return yaml.safe_load(FULL_VALUES.read_text())


@pytest.fixture(scope="session")
def default_render() -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    return support.render()


@pytest.fixture(scope="session")
def full_render(
    full_values: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    return support.render(full_values)
