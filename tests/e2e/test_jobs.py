"""e2e: the tenant's retention CronJob exists, runs as written (sandbox kubelet stand-in), enforces the policy on
the store with the tenant's own credentials, and its result reaches the tenant's status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from memory_client import AgentMemory
from memory_sandbox.sandbox import Sandbox
from tests.e2e.conftest import (
    RESYNC_SECONDS,
    apply,
    get_json,
    login,
    secret,
    tenant_manifest,
    wait_condition,
    wait_until,
)

pytestmark = pytest.mark.e2e


def policy_manifest(name: str, **spec: object) -> dict[str, object]:
    return {"apiVersion": "agentmemory.io/v1alpha1", "kind": "CompliancePolicy", "metadata": {"name": name},
            "spec": spec}  # fmt: skip


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
    result = json.loads(run.stdout.splitlines()[-1])  # one JSON object per line, the result last
    assert (result["job"], result["status"], result["entries_removed"]) == ("retention", "succeeded", "1")
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
    (line,) = done.stderr.splitlines()
    assert json.loads(line) == {"job": "retention", "status": "failed", "error": json.loads(line)["error"]}
    assert "REDIS_URL is not set" in json.loads(line)["error"]


def test_report_finds_planted_violations_and_publishes_them(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, policy_manifest("e2e-report-hipaa", frameworks=["HIPAA", "GDPR"]))
    apply(sandbox, tenant_manifest(namespace, "audited", policyRefs=[{"name": "e2e-report-hipaa"}]))
    obj = wait_condition(sandbox, namespace, "audited", "True")
    prefix = obj["status"]["keyPrefix"]
    client = login(sandbox, namespace, "audited-memory-credentials")
    now_ms = int(time.time() * 1000)
    stream = f"{prefix}agent:bot:conv:c1:s1"
    client.xadd(stream, {"m": "\x00plain text"}, id=f"{now_ms - 400 * DAY_MS}-0")  # too old, and not sealed
    client.hset(f"{prefix}shared:sizes", mapping={stream: 20})  # the stream has no TTL either

    run = sandbox.run_cronjob(namespace, "audited-memory-report")

    assert run.succeeded, run.stderr
    printed = json.loads(run.stdout.splitlines()[-1])
    assert printed["report"]["score"] == int(printed["score"]) and "markdown" not in printed  # an object, no Markdown
    summary = wait_until(
        lambda: get_json(sandbox, "memorytenant", "audited", "-n", namespace)["status"].get("compliance"),
        what="the report summary in status",
    )
    assert summary["violations"] == 3
    data = get_json(sandbox, "configmap", "audited-compliance-report", "-n", namespace)["data"]
    report = json.loads(data["report.json"])
    assert {v["check"] for v in report["violations"]} == {"retention", "ttl", "encryption"}
    assert report["frameworks"]["HIPAA"]["status"] == "violations"
    assert report["audit"]["integrity"]["ok"]
    assert "**FAIL**" in data["summary.md"]


def test_report_on_a_clean_tenant_is_clean(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "tidy", retentionDays=30))
    wait_condition(sandbox, namespace, "tidy", "True")

    assert sandbox.run_cronjob(namespace, "tidy-memory-report").succeeded

    summary = wait_until(
        lambda: get_json(sandbox, "memorytenant", "tidy", "-n", namespace)["status"].get("compliance"),
        what="the report summary in status",
    )
    assert (summary["score"], summary["violations"]) == (100, 0)


def test_report_detects_an_audit_trail_cut_short_by_a_tenant(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "cutter"))
    wait_condition(sandbox, namespace, "cutter", "True")
    env = {
        **secret(sandbox, namespace, "cutter-memory-credentials"),
        **secret(sandbox, namespace, "cutter-memory-keys"),
    }
    with AgentMemory.from_env(env) as memory:  # the library, as an agent with both Secrets would use it
        chat = memory.conversation("c1", subject="user-1", agent="bot")
        for i in range(3):
            chat.append("human", f"message {i}")
        assert memory.verify_audit().ok
    client = login(sandbox, namespace, "cutter-memory-credentials")
    client.xadd(env["MEMORY_AUDIT_KEY"], {"action": "forged"}, maxlen=1, approximate=False)  # XADD may trim

    assert sandbox.run_cronjob(namespace, "cutter-memory-report").succeeded

    def report() -> dict[str, object] | None:
        cm = sandbox.kubectl("get", "configmap", "cutter-compliance-report", "-n", namespace, "-o", "json", check=False)
        return json.loads(json.loads(cm.stdout)["data"]["report.json"]) if cm.returncode == 0 else None

    published = wait_until(report, what="the report ConfigMap")
    assert [v["check"] for v in published["violations"]] == ["audit_integrity"]

    def warned() -> list[dict[str, Any]]:
        events = get_json(sandbox, "events", "-n", namespace, "--field-selector", "involvedObject.name=cutter")
        return [e for e in events["items"] if e["reason"] == "ComplianceViolations"]

    (event,) = wait_until(warned, what="a ComplianceViolations Event")
    assert event["type"] == "Warning" and "audit_integrity" in event["message"]
    time.sleep(3 * RESYNC_SECONDS)  # three more passes over the same report: no new Event (nor a count bump)
    assert [e.get("count", 1) for e in warned()] == [event.get("count", 1)]


def test_report_finds_acl_rules_the_operator_had_to_restore(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "tampered"))
    wait_condition(sandbox, namespace, "tampered", "True")
    sandbox.engine.admin_client().execute_command("ACL", "SETUSER", f"mt_{namespace}_tampered", "+flushall")

    def repaired() -> bool:
        events = get_json(sandbox, "events", "-n", namespace, "--field-selector", "involvedObject.name=tampered")
        return "DriftRepaired" in {e["reason"] for e in events["items"]}

    wait_until(repaired, what="the drift repaired")
    assert sandbox.run_cronjob(namespace, "tampered-memory-report").succeeded

    def violations() -> list[str] | None:
        cm = sandbox.kubectl(
            "get", "configmap", "tampered-compliance-report", "-n", namespace, "-o", "json", check=False
        )
        if cm.returncode != 0:
            return None
        return [v["check"] for v in json.loads(json.loads(cm.stdout)["data"]["report.json"])["violations"]]

    assert wait_until(violations, what="the report ConfigMap") == ["acl"]


def test_a_job_that_fails_on_tenant_data_is_recorded_as_failed_not_running(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "garbled", retentionDays=30))
    obj = wait_condition(sandbox, namespace, "garbled", "True")
    prefix = obj["status"]["keyPrefix"]
    client = login(sandbox, namespace, "garbled-memory-credentials")
    stale = f"{prefix}agent:bot:conv:gone:s2"
    client.hset(f"{prefix}shared:sizes", stale, "not-a-number")  # a tenant user writes its own index

    run = sandbox.run_cronjob(namespace, "garbled-memory-retention")
    assert not run.succeeded
    assert "Traceback" not in run.stderr and "ValueError" in run.stderr
    assert json.loads(run.stderr.splitlines()[0])["status"] == "failed"
    assert json.loads(run.stdout.splitlines()[-1])["status"] == "failed"

    def reported() -> dict[str, str] | None:
        jobs = get_json(sandbox, "memorytenant", "garbled", "-n", namespace)["status"].get("jobs", [])
        return next((j for j in jobs if j["job"] == "retention" and j.get("finishedAt")), None)

    job = wait_until(reported, what="the failed run in the tenant's status")
    assert job["status"] == "failed" and job["summary"].startswith("ValueError"), job
    assert "not-a-number" not in job["summary"]
