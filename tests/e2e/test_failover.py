"""e2e: two operator replicas with --leader-elect, one reconciling; kill the leader, the standby takes over.

Both are real kopf processes against one sandbox, with short Lease timings (3 s / 2 s / 0.5 s) so a takeover
after SIGKILL shows within seconds; bench/bench_takeover.py measures the defaults.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memory_sandbox.sandbox import STORE_NAMESPACE, Replica, Sandbox
from tests.e2e.conftest import RESYNC_SECONDS, apply, condition, get_json, login, tenant_manifest, wait_until

pytestmark = pytest.mark.e2e

DURATION, DEADLINE, RETRY = 3.0, 2.0, 0.5
LEASE = "agent-memory-operator"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path, resync_seconds=RESYNC_SECONDS).start(operator=False)
    try:
        yield sandbox
    finally:
        for replica in sandbox.replicas:
            tail = "\n".join(replica.log.read_text(errors="replace").splitlines()[-30:])
            sys.stderr.write(f"\n--- {replica.name} log tail ---\n{tail}\n")
        sandbox.stop()


def start(box: Sandbox, name: str) -> Replica:
    timings = (f"--lease-duration={DURATION}", f"--renew-deadline={DEADLINE}", f"--retry-period={RETRY}")
    return box.start_replica(name, *timings)


def lease(box: Sandbox) -> dict[str, Any]:
    return dict(get_json(box, "lease", LEASE, "-n", STORE_NAMESPACE)["spec"])


def holder(box: Sandbox) -> str | None:
    result = box.kubectl("get", "lease", LEASE, "-n", STORE_NAMESPACE, "-o", "json", check=False)
    return None if result.returncode else json.loads(result.stdout)["spec"].get("holderIdentity")


def ready(box: Sandbox, namespace: str) -> int:
    return sum(condition(t).get("status") == "True" for t in get_json(box, "memorytenants", "-n", namespace)["items"])


def test_killing_the_leader_hands_over_to_the_standby_without_duplicates(box: Sandbox) -> None:
    first = start(box, "first")
    wait_until(lambda: holder(box) == first.identity(), 30, "the first replica to lead")
    second = start(box, "second")
    wait_until(lambda: second.health() == "standby\n", 30, "the second replica to stand by")
    wait_until(lambda: first.health() not in (None, "standby\n"), 30, "kopf's own liveness endpoint on the leader")

    box.kubectl("create", "namespace", "failover")
    count = 30
    apply(box, *(tenant_manifest("failover", f"t{i}", isolation="moderate", agents=["a"]) for i in range(count)))
    wait_until(lambda: ready(box, "failover") >= 3, 60, "the leader to be mid-way")
    time.sleep(0.5)
    assert second.health() == "standby\n"  # the standby has not started reconciling alongside
    first.stop(signal.SIGKILL)
    killed = time.monotonic()

    wait_until(lambda: holder(box) == second.identity(), DURATION + 10, "the standby to take the Lease")
    took = time.monotonic() - killed
    assert took < DURATION + 2 * RETRY + 3.0, f"takeover took {took:.1f}s"
    assert lease(box)["leaseTransitions"] == 1
    wait_until(lambda: ready(box, "failover") == count, 120, "every tenant Ready under the new leader")

    secrets = {s["metadata"]["name"] for s in get_json(box, "secrets", "-n", "failover")["items"]}
    assert secrets == {
        f"t{i}-{kind}"
        for i in range(count)
        for kind in ("memory-credentials", "a-memory-credentials", "memory-job-credentials", "memory-keys")
    }
    users = {u.decode() for u in box.engine.admin_client().execute_command("ACL", "USERS")}
    assert {u for u in users if u.startswith("mt_failover_")} == {
        name for i in range(count) for name in (f"mt_failover_t{i}", f"mt_failover_t{i}_a", f"mt_failover_t{i}__jobs")
    }
    for i in range(count):  # every Secret agrees with the server: no password was minted twice
        assert login(box, "failover", f"t{i}-a-memory-credentials").ping()


def test_a_leader_stopped_cleanly_releases_the_lease_and_the_standby_leads_at_once(box: Sandbox) -> None:
    first = start(box, "first")
    wait_until(lambda: holder(box) == first.identity(), 30, "the first replica to lead")
    second = start(box, "second")
    wait_until(lambda: second.health() == "standby\n", 30, "the second replica to stand by")

    first.stop(signal.SIGTERM)  # kopf finishes its handlers (renewing the Lease meanwhile), then releases it
    assert first.process.returncode == 0
    released = time.monotonic()  # kopf's shutdown takes as long as its running handlers: not measured
    wait_until(lambda: holder(box) == second.identity(), DURATION, "the standby to take the released Lease")
    assert time.monotonic() - released < DURATION  # it did not wait the Lease out
    box.kubectl("create", "namespace", "handover")
    apply(box, tenant_manifest("handover", "after"))
    wait_until(lambda: ready(box, "handover") == 1, 60, "a tenant created after the handover Ready")
    assert "Released Lease" in first.log.read_text(errors="replace")
