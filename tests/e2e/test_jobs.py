"""e2e: the tenant's retention CronJob exists, runs as written (sandbox kubelet stand-in), enforces the policy on
the store with the tenant's own credentials, and its result reaches the tenant's status."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memory_sandbox.sandbox import Sandbox
from tests.e2e.conftest import apply, get_json, login, tenant_manifest, wait_condition, wait_until

pytestmark = pytest.mark.e2e
DAY_MS = 86_400_000


def test_retention_job_enforces_the_maximum_and_reports_to_status(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "forgetful", retentionDays=30))
    obj = wait_condition(sandbox, namespace, "forgetful", "True")
    cronjob = get_json(sandbox, "cronjob", "forgetful-memory-retention", "-n", namespace)
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "memory-jobs",
        "retention",
    ]
    # Seed data in the library's key schema, as the tenant itself (tenant users may write only their prefix).
    prefix = obj["status"]["keyPrefix"]
    sizes, stream, note = f"{prefix}shared:sizes", f"{prefix}agent:bot:conv:c1:s1", f"{prefix}shared:ctx:notes"
    client = login(sandbox, namespace, "forgetful-memory-credentials")
    now_ms = int(time.time() * 1000)
    client.xadd(stream, {"m": "old"}, id=f"{now_ms - 40 * DAY_MS}-0")
    client.xadd(stream, {"m": "new"}, id=f"{now_ms - 1 * DAY_MS}-0")
    client.set(note, "no ttl yet")
    client.hset(sizes, mapping={stream: 10, note: 5, f"{prefix}agent:bot:conv:gone:s2": 7})

    run = sandbox.run_cronjob(namespace, "forgetful-memory-retention")

    assert run.succeeded, run.stderr
    assert [fields["m"] for _, fields in client.xrange(stream)] == ["new"]
    assert 0 < client.ttl(note) <= 30 * 86400
    assert not client.hexists(sizes, f"{prefix}agent:bot:conv:gone:s2")

    def reported() -> dict[str, str] | None:
        jobs = get_json(sandbox, "memorytenant", "forgetful", "-n", namespace)["status"].get("jobs", [])
        return next((j for j in jobs if j["job"] == "retention" and j.get("finishedAt")), None)

    job = wait_until(reported, what="the job result in the tenant's status")
    assert job["status"] == "succeeded"
    assert "entries_removed=1" in job["summary"] and "ttl_set=" in job["summary"]
    assert "stale_index_entries=1" in job["summary"]


def test_retention_job_without_credentials_fails_clearly() -> None:
    jobs = Path(sys.executable).parent / "memory-jobs"
    env = {"PATH": os.environ["PATH"]}
    done = subprocess.run([str(jobs), "retention"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "REDIS_URL is not set" in done.stderr
