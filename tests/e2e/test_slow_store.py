"""e2e: a store that accepts connections and never answers must not hold up tenants on the other stores.

Every reconcile on it waits out the admin timeout (5 s) and retries; without a per-store limit, forty such
tenants keep all eight of kopf's workers busy and a healthy tenant waits its turn behind them. With the limit
(4 per store by default, once its reconciles are seen to hang) the healthy tenants wait at most for the first
wave of reconciles that took every worker before anyone could tell the store hangs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from memory_sandbox.sandbox import STORE_NAMESPACE, Sandbox
from tests.e2e.conftest import apply, condition, get_json, running_sandbox, tenant_manifest, wait_until

pytestmark = pytest.mark.e2e


class Blackhole:
    """A TCP listener on loopback that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("slow-store")) as sandbox:
        yield sandbox


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


def test_a_store_that_never_answers_does_not_hold_up_tenants_on_other_stores(
    box: Sandbox, blackhole: Blackhole
) -> None:
    apply(
        box,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "silent-admin", "namespace": STORE_NAMESPACE},
            "stringData": {"username": "admin", "password": "not-checked-it-never-answers"},
        },
        {
            "apiVersion": "agentmemory.io/v1alpha1",
            "kind": "MemoryStore",
            "metadata": {"name": "silent"},
            "spec": {
                "url": f"redis://127.0.0.1:{blackhole.port}",
                "adminSecretRef": {"name": "silent-admin", "namespace": STORE_NAMESPACE},
            },
        },
    )
    box.kubectl("create", "namespace", "stuck")
    slow = 40
    apply(box, *(tenant_manifest("stuck", f"s{i}", storeRef={"name": "silent"}) for i in range(slow)))
    wait_until(lambda: len(blackhole._held) >= 4, 30, "reconciles to be waiting on the silent store")

    box.kubectl("create", "namespace", "healthy")
    fine = 10
    started = time.monotonic()
    apply(box, *(tenant_manifest("healthy", f"h{i}") for i in range(fine)))

    def ready() -> bool:
        items = get_json(box, "memorytenants", "-n", "healthy")["items"]
        return sum(condition(t).get("status") == "True" for t in items) == fine

    wait_until(ready, 60, "the healthy tenants Ready")
    took = time.monotonic() - started
    stuck = get_json(box, "memorytenants", "-n", "stuck")["items"]
    assert not any(condition(t).get("status") == "True" for t in stuck)  # the silent store really was silent
    # One reconcile on the silent store takes 5 s. Without the limit (AGENTMEMORY_RECONCILES_PER_STORE=100), behind
    # forty of them on eight workers, the healthy tenants took 25.5 s; with it, 5.8 s (the first wave of eight
    # reconciles on the silent store held every worker for one timeout before the store was seen to hang).
    assert took < 10.0, f"the healthy tenants took {took:.1f}s"
