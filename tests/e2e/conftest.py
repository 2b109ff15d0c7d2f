"""e2e fixtures: the sandbox API server and valkey-server as processes, the operator as a real kopf process."""

from __future__ import annotations

import base64
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from memory_operator.deps import RETRY_SCALE_ENV
from memory_sandbox.sandbox import Sandbox

_namespaces = itertools.count()
RESYNC_SECONDS = 2.0  # the operator's drift timer, short so drift repair and outages show within seconds
RETRY_SCALE = 0.1  # every retry delay of the operator, so a 30 s wait (PolicyInUse) takes 3 s


@pytest.fixture(scope="session", autouse=True)
def quick_retries() -> Iterator[None]:
    """Every operator these tests start (the sandbox passes its environment on) retries ten times sooner."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv(RETRY_SCALE_ENV, str(RETRY_SCALE))
        yield


@contextmanager
def running_sandbox(workdir: Path, resync_seconds: float = RESYNC_SECONDS) -> Iterator[Sandbox]:
    """A started sandbox; afterwards the operator log's tail goes to stderr (pytest shows it on failure)."""
    box = Sandbox(workdir, resync_seconds=resync_seconds).start()
    try:
        yield box
    finally:
        tail = "\n".join(box.operator_log_text().splitlines()[-60:])
        sys.stderr.write(f"\n--- operator log tail ({box.operator_log}) ---\n{tail}\n")
        box.stop()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("sandbox")) as box:
        yield box


@pytest.fixture
def namespace(sandbox: Sandbox, request: pytest.FixtureRequest) -> str:
    readable = request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")
    name = f"e2e{next(_namespaces)}-{readable[:45].strip('-')}"
    sandbox.kubectl("create", "namespace", name)
    return name


def apply(sandbox: Sandbox, *docs: dict[str, Any], check: bool = True) -> Any:
    return sandbox.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), check=check)


def tenant_manifest(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if spec.get("deletionPolicy") == "Delete":  # confirmed, as a user who means it would (README "Deletion")
        metadata["annotations"] = {"agentmemory.io/confirm-deletion": name}
    return {"apiVersion": "agentmemory.io/v1alpha1", "kind": "MemoryTenant", "metadata": metadata, "spec": spec}


def get_json(sandbox: Sandbox, *args: str) -> Any:
    return json.loads(sandbox.kubectl("get", *args, "-o", "json").stdout)


def condition(obj: dict[str, Any], type_: str = "Ready") -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll (never a fixed sleep) until `predicate` returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.2)


def wait_condition(
    sandbox: Sandbox, namespace: str, name: str, status: str, reason: str | None = None, timeout: float = 30.0
) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        obj = get_json(sandbox, "memorytenant", name, "-n", namespace)
        ready = condition(obj)
        if ready.get("status") == status and (reason is None or ready.get("reason") == reason):
            return obj
        return None

    return wait_until(matches, timeout, f"{namespace}/{name} Ready={status} {reason or ''}")  # type: ignore[no-any-return]


def secret(sandbox: Sandbox, namespace: str, name: str) -> dict[str, str]:
    raw = get_json(sandbox, "secret", name, "-n", namespace)
    return {k: base64.b64decode(v).decode() for k, v in raw["data"].items()}


def login(sandbox: Sandbox, namespace: str, secret_name: str) -> redis.Redis:
    return redis.Redis.from_url(secret(sandbox, namespace, secret_name)["REDIS_URL"], decode_responses=True)
