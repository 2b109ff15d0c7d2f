"""e2e: what reaches a tenant without its timer: a change to a child it owns, a change to a policy it names.

The operator here runs with a drift timer of ten minutes, so whatever is repaired within seconds was repaired by
the reconcile the change requested (handlers.requests), through the tenant's own handler.
"""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from memory_operator.handlers.requests import REQUEST_ANNOTATION
from memory_sandbox.sandbox import Sandbox
from tests.e2e.conftest import (
    apply,
    condition,
    get_json,
    running_sandbox,
    secret,
    tenant_manifest,
    wait_condition,
    wait_until,
)

pytestmark = pytest.mark.e2e

SLOW_TIMER = 600.0  # seconds: no test here waits anywhere near one timer period
PROMPT = 15.0  # seconds a requested reconcile may take, at most, in these tests


@pytest.fixture(scope="module")
def slow_timer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("slow-timer"), resync_seconds=SLOW_TIMER) as box:
        box.kubectl("create", "namespace", "owned")
        yield box


def policy(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "agentmemory.io/v1alpha1", "kind": "CompliancePolicy", "metadata": {"name": name},
            "spec": spec}  # fmt: skip


def requested_by(box: Sandbox, namespace: str, name: str) -> str:
    annotations = get_json(box, "memorytenant", name, "-n", namespace)["metadata"].get("annotations") or {}
    return str(annotations.get(REQUEST_ANNOTATION, ""))


def report(what: str, seconds: float) -> None:
    sys.stdout.write(f"\n{what}: {seconds:.2f} s\n")


def test_the_operators_own_writes_of_a_tenants_children_ask_for_no_reconcile(slow_timer: Sandbox) -> None:
    apply(slow_timer, tenant_manifest("owned", "quiet", agents=["a", "b"]))
    wait_condition(slow_timer, "owned", "quiet", "True")
    time.sleep(2.0)  # a window for echoes of the pass's writes (six Secrets, two CronJobs) to come back; none may ask

    assert requested_by(slow_timer, "owned", "quiet") == ""
    assert "reconcile of MemoryTenant quiet requested" not in slow_timer.operator_log_text()


def test_an_edited_credentials_secret_is_repaired_long_before_the_timer(slow_timer: Sandbox) -> None:
    apply(slow_timer, tenant_manifest("owned", "edited"))
    wait_condition(slow_timer, "owned", "edited", "True")
    prefix = secret(slow_timer, "owned", "edited-memory-credentials")["MEMORY_KEY_PREFIX"]

    evil = base64.b64encode(b"someone-else:").decode()
    started = time.monotonic()
    slow_timer.kubectl("patch", "secret", "edited-memory-credentials", "-n", "owned", "--type=merge",
                       "-p", f'{{"data": {{"MEMORY_KEY_PREFIX": "{evil}"}}}}')  # fmt: skip

    wait_until(
        lambda: secret(slow_timer, "owned", "edited-memory-credentials")["MEMORY_KEY_PREFIX"] == prefix,
        timeout=PROMPT,
        what="the Secret's prefix put back",
    )
    report("Secret edit -> repaired", time.monotonic() - started)
    assert requested_by(slow_timer, "owned", "edited").startswith("Secret/edited-memory-credentials@")


def test_a_deleted_cronjob_is_recreated_long_before_the_timer(slow_timer: Sandbox) -> None:
    apply(slow_timer, tenant_manifest("owned", "pruned"))
    wait_condition(slow_timer, "owned", "pruned", "True")
    old_uid = get_json(slow_timer, "cronjob", "pruned-memory-retention", "-n", "owned")["metadata"]["uid"]

    started = time.monotonic()
    slow_timer.kubectl("delete", "cronjob", "pruned-memory-retention", "-n", "owned")

    def recreated() -> bool:
        found = slow_timer.kubectl("get", "cronjob", "pruned-memory-retention", "-n", "owned", "-o",
                                   "jsonpath={.metadata.uid}", check=False)  # fmt: skip
        return found.returncode == 0 and found.stdout not in ("", old_uid)

    wait_until(recreated, timeout=PROMPT, what="the CronJob recreated")
    report("CronJob delete -> recreated", time.monotonic() - started)
    assert requested_by(slow_timer, "owned", "pruned").startswith("CronJob/pruned-memory-retention@")


def test_a_policy_edit_reaches_each_bound_tenant_and_one_tenants_conflict_stops_no_other(
    slow_timer: Sandbox,
) -> None:
    apply(slow_timer, policy("requests-shared", overrides={"messageRetentionDays": 120}))
    apply(slow_timer, policy("requests-floor", overrides={"messageMinRetentionDays": 60}))
    apply(slow_timer, tenant_manifest("owned", "follower", policyRefs=[{"name": "requests-shared"}]))
    both = [{"name": "requests-shared"}, {"name": "requests-floor"}]
    apply(slow_timer, tenant_manifest("owned", "floored", policyRefs=both))
    wait_condition(slow_timer, "owned", "follower", "True")
    wait_condition(slow_timer, "owned", "floored", "True")

    started = time.monotonic()
    apply(slow_timer, policy("requests-shared", overrides={"messageRetentionDays": 30}))  # below the floor's 60

    follower = wait_until(
        lambda: (
            (obj := get_json(slow_timer, "memorytenant", "follower", "-n", "owned"))["status"]["effectivePolicy"][
                "messageRetentionDays"
            ]
            == 30
            and obj
        ),
        timeout=PROMPT,
        what="the follower's effective policy to follow",
    )
    report("policy edit -> bound tenant's status follows", time.monotonic() - started)
    assert condition(follower)["status"] == "True"
    assert secret(slow_timer, "owned", "follower-memory-credentials")["MEMORY_RETENTION_DAYS"] == "30"
    floored = wait_condition(slow_timer, "owned", "floored", "False", "PolicyConflict", timeout=PROMPT)
    assert "messageMinRetentionDays" in condition(floored)["message"]
    # Both asked by the policy, each reconciled by its own handler; the policy's own outcome is its own status.
    for name in ("follower", "floored"):
        assert requested_by(slow_timer, "owned", name).startswith("CompliancePolicy/requests-shared@")
    shared = get_json(slow_timer, "compliancepolicy", "requests-shared")
    assert condition(shared)["status"] == "True"
    assert shared["status"]["requirements"]["messageRetentionDays"] == 30


def test_a_policys_bound_tenants_follow_a_tenant_naming_it_and_going_long_before_the_timer(
    slow_timer: Sandbox,
) -> None:
    apply(slow_timer, policy("requests-counted", frameworks=["SOX"]))
    wait_until(lambda: condition(get_json(slow_timer, "compliancepolicy", "requests-counted")).get("status") == "True")

    def bound() -> int:
        return int((get_json(slow_timer, "compliancepolicy", "requests-counted").get("status") or {})["boundTenants"])

    started = time.monotonic()
    apply(slow_timer, tenant_manifest("owned", "counted", policyRefs=[{"name": "requests-counted"}]))
    wait_until(lambda: bound() == 1, timeout=PROMPT, what="boundTenants 1")
    report("tenant names a policy -> boundTenants follows", time.monotonic() - started)

    slow_timer.kubectl("delete", "memorytenant", "counted", "-n", "owned")
    wait_until(lambda: bound() == 0, timeout=PROMPT, what="boundTenants 0 once the tenant is gone")
