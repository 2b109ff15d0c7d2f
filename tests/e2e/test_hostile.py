"""Hostile and careless manifests against the operator as a real process, applied with kubectl.

Whoever may create our custom resources (and ordinary objects in a tenant namespace) tries to make the operator
reveal a Secret, take over an object it did not create, place a tenant by a coin toss, or leave access alive
after a delete. Each case must end refused at admission, or Ready=False with a reason and a message naming the
field plus an Event, with nothing half-provisioned, no secret value anywhere, and no access surviving deletion.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from memory_sandbox.sandbox import STORE_NAMESPACE, Sandbox
from tests.e2e.conftest import (
    apply,
    condition,
    get_json,
    login,
    running_sandbox,
    secret,
    tenant_manifest,
    wait_condition,
    wait_until,
)

pytestmark = pytest.mark.e2e


def _store(
    name: str, url: str, ref: dict[str, Any], annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "agentmemory.io/v1alpha1",
        "kind": "MemoryStore",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"url": url, "adminSecretRef": ref, **spec},
    }


def _wait_store(sandbox: Sandbox, name: str, reason: str) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        obj = get_json(sandbox, "memorystore", name)
        return obj if condition(obj).get("reason") == reason else None

    return wait_until(matches, 30, f"MemoryStore {name} {reason}")  # type: ignore[no-any-return]


def _events(sandbox: Sandbox) -> str:
    return json.dumps(get_json(sandbox, "events", "-A"))


def _events_for(sandbox: Sandbox, namespace: str, name: str) -> list[dict[str, Any]]:
    selector = f"involvedObject.name={name}"
    return list(get_json(sandbox, "events", "-n", namespace, "--field-selector", selector)["items"])


def _tenant_users(sandbox: Sandbox, prefix: str) -> list[str]:
    users = sandbox.engine.admin_client().execute_command("ACL", "USERS")
    return sorted(u.decode() for u in users if u.decode() == prefix or u.decode().startswith(prefix + "_"))


def _delete_store(sandbox: Sandbox, name: str) -> None:
    sandbox.kubectl("delete", "memorystore", name, "--wait=true", "--timeout=60s", check=False)


def _nowhere(sandbox: Sandbox, values: list[str], *objects: Any) -> None:
    """None of `values` in the given objects, any Event, or the operator log."""
    places = {"events": _events(sandbox), "operator log": sandbox.operator_log_text()}
    places.update({f"object {i}": json.dumps(obj) for i, obj in enumerate(objects)})
    for value in values:
        for where, text in places.items():
            assert value not in text, f"a secret value leaked into the {where}"


# A MemoryStore must never make the operator reveal a Secret ------------------------------------------------------


def test_a_store_pointing_at_a_tenant_secret_reveals_neither_password_nor_keyring(
    sandbox: Sandbox, namespace: str
) -> None:
    apply(sandbox, tenant_manifest(namespace, "victim"))
    wait_condition(sandbox, namespace, "victim", "True")
    password = secret(sandbox, namespace, "victim-memory-credentials")["REDIS_PASSWORD"]
    keyring = json.loads(secret(sandbox, namespace, "victim-memory-keys")["MEMORY_KEYRING"])
    key = keyring["keys"][0]["key"]
    creds = {"name": "victim-memory-credentials", "namespace": namespace, "usernameKey": "REDIS_PASSWORD"}
    keys = {"name": "victim-memory-keys", "namespace": namespace, "usernameKey": "MEMORY_KEYRING"}
    apply(sandbox, _store("thief", sandbox.engine.url, creds), _store("thief-keys", sandbox.engine.url, keys))
    try:
        stores = [_wait_store(sandbox, name, "InvalidSpec") for name in ("thief", "thief-keys")]

        for store in stores:
            assert condition(store)["message"].startswith("spec.adminSecretRef.namespace:")
            assert condition(store, "Stalled")["status"] == "True"
        wait_until(lambda: _events_for(sandbox, "default", "thief"), what="an Event on the store")
        _nowhere(sandbox, [password, key], *stores)
        assert login(sandbox, namespace, "victim-memory-credentials").ping()
    finally:
        for name in ("thief", "thief-keys"):
            _delete_store(sandbox, name)


def test_a_store_secret_in_the_operator_namespace_never_has_its_values_quoted(sandbox: Sandbox) -> None:
    canary = "canary-username-0f3c9a"
    admin = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "decoy-admin", "namespace": STORE_NAMESPACE},
        "stringData": {"username": canary, "password": canary + "-password"},
    }
    ref = {"name": "decoy-admin", "namespace": STORE_NAMESPACE}
    apply(sandbox, admin, _store("decoy", sandbox.engine.url, ref))
    try:
        store = _wait_store(sandbox, "decoy", "StoreUnavailable")
        assert "refused the admin credentials" in condition(store)["message"]
        assert condition(store, "Reconciling")["status"] == "True"
        _nowhere(sandbox, [canary], store)
    finally:
        _delete_store(sandbox, "decoy")


def test_a_store_secret_without_the_named_key_names_the_field(sandbox: Sandbox) -> None:
    ref = {"name": "sandbox-store-admin", "namespace": STORE_NAMESPACE, "passwordKey": "no-such-key"}
    apply(sandbox, _store("keyless", sandbox.engine.url, ref))
    try:
        store = _wait_store(sandbox, "keyless", "SecretNotFound")
        assert condition(store)["message"].startswith("spec.adminSecretRef.passwordKey:")
        _nowhere(sandbox, [sandbox.engine.admin_password], store)
    finally:
        _delete_store(sandbox, "keyless")


# Nothing half-provisioned, no access after deletion ---------------------------------------------------------------


def test_tenants_whose_secret_names_collide_are_refused_and_leave_no_access_after_deletion(
    sandbox: Sandbox, namespace: str
) -> None:
    apply(sandbox, tenant_manifest(namespace, "a", agents=["b-c"]))
    wait_condition(sandbox, namespace, "a", "True")
    first_url = secret(sandbox, namespace, "a-b-c-memory-credentials")["REDIS_URL"]
    apply(sandbox, tenant_manifest(namespace, "a-b", agents=["c"]))

    refused = wait_condition(sandbox, namespace, "a-b", "False", "NameConflict")

    assert "a-b-c-memory-credentials" in condition(refused)["message"]
    assert condition(refused, "Stalled")["status"] == "True"
    assert "store" not in refused["status"]
    assert _tenant_users(sandbox, f"mt_{namespace}_a-b") == []
    secrets = {s["metadata"]["name"] for s in get_json(sandbox, "secrets", "-n", namespace)["items"]}
    assert not {"a-b-memory-credentials", "a-b-memory-keys"} & secrets
    sandbox.kubectl("delete", "memorytenants", "a", "a-b", "-n", namespace, "--timeout=60s")

    assert _tenant_users(sandbox, f"mt_{namespace}_a") == []
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(first_url).ping()


def test_a_foreign_cronjob_at_our_name_is_neither_taken_over_nor_deleted(sandbox: Sandbox, namespace: str) -> None:
    pod = {"restartPolicy": "Never", "containers": [{"name": "theirs", "image": "busybox", "command": ["true"]}]}
    theirs = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "cron-memory-retention", "namespace": namespace},
        "spec": {"schedule": "0 1 * * *", "jobTemplate": {"spec": {"template": {"spec": pod}}}},
    }
    apply(sandbox, theirs, tenant_manifest(namespace, "cron"))

    refused = wait_condition(sandbox, namespace, "cron", "False", "NameConflict")
    assert "CronJob" in condition(refused)["message"]
    sandbox.kubectl("delete", "memorytenant", "cron", "-n", namespace, "--timeout=60s")

    kept = get_json(sandbox, "cronjob", "cron-memory-retention", "-n", namespace)
    assert "ownerReferences" not in kept["metadata"]
    assert kept["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"


def test_two_default_stores_place_nothing_until_one_default_is_left(sandbox: Sandbox, namespace: str) -> None:
    ref = {"name": "sandbox-store-admin", "namespace": STORE_NAMESPACE}
    apply(sandbox, _store("second-default", sandbox.engine.url, ref, {"agentmemory.io/default-store": "true"}))
    try:
        apply(sandbox, tenant_manifest(namespace, "undecided"))
        refused = wait_condition(sandbox, namespace, "undecided", "False", "AmbiguousDefaultStore")
        assert "sandbox" in condition(refused)["message"] and "second-default" in condition(refused)["message"]
        assert "store" not in refused["status"]
    finally:
        _delete_store(sandbox, "second-default")
    placed = wait_condition(sandbox, namespace, "undecided", "True", timeout=90)
    assert placed["status"]["store"] == "sandbox"


# A hung store: deletion says so within one timeout, runs once, and nothing is re-applied ---------------------------


@pytest.fixture(scope="module")
def hanging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("hanging")) as box:
        yield box


def test_deleting_a_tenant_on_a_hung_store_waits_visibly_then_revokes_once(hanging: Sandbox) -> None:
    hanging.kubectl("create", "namespace", "hung")
    apply(hanging, tenant_manifest("hung", "stuck", agents=["w"], deletionPolicy="Delete"))
    wait_condition(hanging, "hung", "stuck", "True")
    pid = hanging.engine.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # the process is there and accepts connections, but never answers
    try:
        hanging.kubectl("delete", "memorytenant", "stuck", "-n", "hung", "--wait=false")
        started = time.monotonic()

        waiting = wait_until(
            lambda: [e for e in _events_for(hanging, "hung", "stuck") if "deletion waits" in e.get("message", "")],
            timeout=20,
            what="a 'deletion waits' Event",
        )
        waited = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)

    assert waiting[0]["reason"] == "StoreUnavailable"
    assert waited < 15, f"the first deletion Event took {waited:.1f}s"
    wait_until(
        lambda: hanging.kubectl("get", "memorytenant", "stuck", "-n", "hung", check=False).returncode != 0,
        timeout=90,
        what="the tenant to be gone",
    )
    time.sleep(3 * 2.0)  # a few drift-timer periods: nothing may bring the tenant's children back
    secrets = [s["metadata"]["name"] for s in get_json(hanging, "secrets", "-n", "hung")["items"]]
    assert [s for s in secrets if s.startswith("stuck-")] == []
    assert _tenant_users(hanging, "mt_hung_stuck") == []
    reasons = [e["reason"] for e in _events_for(hanging, "hung", "stuck")]
    assert reasons.count("AccessRevoked") == 1 and reasons.count("DataDeleted") == 1


def test_an_invalid_spec_is_judged_once_without_errors_or_tracebacks_in_the_log(
    sandbox: Sandbox, namespace: str
) -> None:
    log_start = len(sandbox.operator_log_text())
    apply(sandbox, tenant_manifest(namespace, "zero", quota={"memory": "0"}))

    refused = wait_condition(sandbox, namespace, "zero", "False", "InvalidSpec")
    time.sleep(3 * 2.0)  # three drift-timer periods: each must leave the verdict alone and log nothing

    assert condition(refused)["message"] == "spec.quota.memory: must be greater than zero"
    assert condition(refused, "Stalled")["status"] == "True"
    lines = sandbox.operator_log_text()[log_start:].splitlines()
    assert not [line for line in lines if "ERROR" in line or "Traceback" in line]
    assert len([line for line in lines if "spec.quota.memory: must be greater than zero" in line]) == 1
    events = [e for e in _events_for(sandbox, namespace, "zero") if e["reason"] == "InvalidSpec"]
    assert len(events) == 1 and events[0].get("count", 1) == 1
    assert _tenant_users(sandbox, f"mt_{namespace}_zero") == []


# Refused at admission: kubectl apply fails, naming the field, and nothing is stored -----------------------------

_POLICY = {"apiVersion": "agentmemory.io/v1alpha1", "kind": "CompliancePolicy"}
_REF = {"name": "x", "namespace": STORE_NAMESPACE}


@pytest.mark.parametrize(
    ("kind", "doc", "field", "words"),
    [
        ("memorytenant", {"metadata": {"name": "t" * 36}, "spec": {}}, "<nil>", "must be no more than 35"),
        (
            "memorytenant",
            {"metadata": {"name": "minimal"}, "spec": {"isolation": "minimal", "agents": ["planner"]}},
            "spec.agents",
            "must be empty with isolation minimal",
        ),
        ("memorystore", _store("port-high", "redis://valkey:99999", _REF), "spec.url", ""),
        ("memorystore", _store("port-zero", "redis://valkey:0", _REF), "spec.url", ""),
        ("memorystore", _store("tls-plain", "redis://valkey:6379", _REF, tls={}), "spec.tls", "rediss:// URL"),
        (
            "compliancepolicy",
            {
                **_POLICY,
                "metadata": {"name": "upside-down"},
                "spec": {"overrides": {"messageRetentionDays": 30, "messageMinRetentionDays": 90}},
            },
            "spec.overrides.messageMinRetentionDays",
            "must not exceed messageRetentionDays",
        ),
    ],
    ids=["tenant-name-36", "minimal-with-agents", "port-99999", "port-0", "tls-on-redis", "min-above-max"],
)
def test_specs_the_operator_cannot_honour_are_refused_by_kubectl_apply(
    sandbox: Sandbox, namespace: str, kind: str, doc: dict[str, Any], field: str, words: str
) -> None:
    doc = {"apiVersion": "agentmemory.io/v1alpha1", "kind": doc.get("kind", "MemoryTenant"), **doc}
    if kind == "memorytenant":
        doc["metadata"] = {**doc["metadata"], "namespace": namespace}
    result = apply(sandbox, doc, check=False)
    assert result.returncode != 0
    assert f"{field}: " in result.stderr and words in result.stderr, result.stderr
    name = doc["metadata"]["name"]
    where = ["-n", namespace] if kind == "memorytenant" else []
    assert sandbox.kubectl("get", kind, name, *where, check=False).returncode != 0  # nothing was stored


def test_a_tenant_cannot_be_moved_to_another_store_once_placed(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "settled", storeRef={"name": "sandbox"}))
    wait_condition(sandbox, namespace, "settled", "True")
    result = apply(sandbox, tenant_manifest(namespace, "settled", storeRef={"name": "elsewhere"}), check=False)
    assert result.returncode != 0 and "spec.storeRef: " in result.stderr and "cannot change once set" in result.stderr
    result = apply(sandbox, tenant_manifest(namespace, "settled"), check=False)  # dropping it is a change too
    assert result.returncode != 0 and "spec.storeRef: " in result.stderr
    assert get_json(sandbox, "memorytenant", "settled", "-n", namespace)["spec"]["storeRef"] == {"name": "sandbox"}


def test_a_report_schedule_that_never_fires_is_an_invalid_policy(sandbox: Sandbox) -> None:
    apply(
        sandbox,
        {**_POLICY, "metadata": {"name": "leap-day-never"}, "spec": {"overrides": {"reportSchedule": "0 0 30 2 *"}}},
    )
    try:

        def refused() -> dict[str, Any] | None:
            obj = get_json(sandbox, "compliancepolicy", "leap-day-never")
            return obj if condition(obj).get("reason") == "InvalidSpec" else None

        policy = wait_until(refused, 30, "the policy InvalidSpec")
        message = condition(policy)["message"]
        assert message.startswith("spec.overrides.reportSchedule: ") and "never fires" in message, message
    finally:
        sandbox.kubectl("delete", "compliancepolicy", "leap-day-never", check=False)


def test_the_longest_tenant_name_provisions_every_child_and_its_jobs_run(sandbox: Sandbox, namespace: str) -> None:
    name = "t" * 35  # the longest the CRD admits; the sandbox refuses child names a real API server refuses
    apply(sandbox, tenant_manifest(namespace, name, agents=["a" * 63]))
    ready = wait_condition(sandbox, namespace, name, "True", timeout=60)
    assert {u["secretName"] for u in ready["status"]["users"]} == {
        f"{name}-memory-credentials",
        f"{name}-{'a' * 63}-memory-credentials",
    }
    for job in ("retention", "report"):
        run = sandbox.run_cronjob(namespace, f"{name}-memory-{job}")
        assert run.succeeded, run.stderr
        assert len(run.job_name) <= 63
