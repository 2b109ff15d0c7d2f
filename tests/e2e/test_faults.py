"""e2e faults: the store goes away and comes back; the operator is SIGKILLed mid-way and restarted.

These tests stop processes, so they get a sandbox of their own rather than the session's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memory_sandbox.sandbox import Sandbox
from tests.e2e.conftest import (
    apply,
    condition,
    get_json,
    login,
    running_sandbox,
    tenant_manifest,
    wait_condition,
    wait_until,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("faulty")) as box:
        yield box


def test_store_outage_reports_unavailable_then_converges_with_users_restored(faulty: Sandbox) -> None:
    faulty.kubectl("create", "namespace", "outage")
    apply(faulty, tenant_manifest("outage", "resilient", agents=["worker"]))
    wait_condition(faulty, "outage", "resilient", "True")

    faulty.engine.stop()
    obj = wait_condition(faulty, "outage", "resilient", "False", "StoreUnavailable")
    assert f"127.0.0.1:{faulty.engine.port}" in condition(obj)["message"]
    assert faulty.engine.admin_password not in faulty.operator_log_text()
    store = get_json(faulty, "memorystore", "sandbox")
    wait_until(lambda: condition(get_json(faulty, "memorystore", "sandbox"))["status"] == "False", what="store down")

    faulty.engine.start()  # no persistence: it comes back empty, without the tenant's ACL users

    wait_condition(faulty, "outage", "resilient", "True", timeout=90)
    assert login(faulty, "outage", "resilient-memory-credentials").ping()
    assert login(faulty, "outage", "resilient-worker-memory-credentials").ping()
    wait_until(lambda: condition(get_json(faulty, "memorystore", "sandbox"))["status"] == "True", 90, "store back")
    assert store["metadata"]["uid"] == get_json(faulty, "memorystore", "sandbox")["metadata"]["uid"]


def test_operator_killed_midway_converges_without_duplicates_or_orphans(faulty: Sandbox) -> None:
    faulty.kubectl("create", "namespace", "crash")
    count = 30
    apply(faulty, *(tenant_manifest("crash", f"t{i}", isolation="moderate", agents=["a"]) for i in range(count)))
    wait_until(
        lambda: any(condition(t) for t in get_json(faulty, "memorytenants", "-n", "crash")["items"]),
        what="the operator to be mid-way",
    )

    faulty.stop_operator(kill=True)
    faulty.start_operator()
    faulty.kubectl("wait", "--for=condition=Ready", "memorytenants", "--all", "-n", "crash", "--timeout=120s")

    secrets = {s["metadata"]["name"] for s in get_json(faulty, "secrets", "-n", "crash")["items"]}
    expected = {
        f"t{i}-{kind}"
        for i in range(count)
        for kind in ("memory-credentials", "a-memory-credentials", "memory-job-credentials", "memory-keys")
    }
    assert secrets == expected
    users = {u.decode() for u in faulty.engine.admin_client().execute_command("ACL", "USERS")}
    assert {u for u in users if u.startswith("mt_crash_")} == {
        name for i in range(count) for name in (f"mt_crash_t{i}", f"mt_crash_t{i}_a", f"mt_crash_t{i}__jobs")
    }
    for i in range(count):  # every Secret agrees with the server: no password was minted twice
        assert login(faulty, "crash", f"t{i}-a-memory-credentials").ping()
        assert login(faulty, "crash", f"t{i}-memory-job-credentials").ping()
