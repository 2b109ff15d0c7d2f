"""e2e at scale: 200 tenants applied at once all become Ready (the time is a benchmark: bench/bench_tenants.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memory_sandbox.sandbox import Sandbox
from tests.e2e.conftest import apply, get_json, running_sandbox, tenant_manifest

pytestmark = pytest.mark.e2e
TENANTS = 200


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("scale")) as box:
        yield box


def test_two_hundred_tenants_applied_at_once_all_become_ready(roomy: Sandbox) -> None:
    roomy.kubectl("create", "namespace", "crowd")
    apply(roomy, *(tenant_manifest("crowd", f"tenant-{i:03}") for i in range(TENANTS)))

    roomy.kubectl(
        "wait", "--for=condition=Ready", "memorytenants", "--all", "-n", "crowd", "--timeout=300s", timeout=320
    )

    tenants = get_json(roomy, "memorytenants", "-n", "crowd")["items"]
    assert len(tenants) == TENANTS
    prefixes = {t["status"]["keyPrefix"] for t in tenants}
    assert len(prefixes) == TENANTS
    users = {u.decode() for u in roomy.engine.admin_client().execute_command("ACL", "USERS")}
    assert len([u for u in users if u.startswith("mt_crowd_") and not u.endswith("__jobs")]) == TENANTS
    assert len([u for u in users if u.startswith("mt_crowd_") and u.endswith("__jobs")]) == TENANTS
