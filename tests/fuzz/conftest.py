"""Markers of the bad-input suite (hypothesis fuzzing and hostile clients)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fuzz: property-based fuzzing and hostile clients")
