"""One full operator lifecycle in the sandbox, recorded once and examined by several tests.

The operator runs as a real process at DEBUG with its metrics endpoint on, and the sandbox API records every
request. The lifecycle covers every path that calls the Kubernetes API: create (keyring created, credentials
applied), update (an agent removed: its Secret deleted), drift repair, a failing tenant, usage measured, and
deletion with both policies (keyring orphaned / deleted). Tests then read what was recorded: requests (RBAC),
the operator log (secrets), metric scrapes and Events.
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from memory_sandbox.apiserver.requestlog import ENV_VAR as REQUEST_LOG_ENV
from memory_sandbox.engine import free_port
from memory_sandbox.sandbox import Sandbox, kubectl_binary
from tests.e2e.conftest import apply, get_json, login, secret, tenant_manifest, wait_condition, wait_until

NAMESPACE = "ops-lifecycle"
RESYNC_SECONDS = 2.0
ROOT = Path(__file__).resolve().parents[2]
#: CompliancePolicy is being added; the lifecycle exercises it as soon as its CRD is in crds/.
HAS_POLICIES = (ROOT / "crds" / "agentmemory.io_compliancepolicies.yaml").exists()
POLICY = "ops-policy"


def policy_manifest(frameworks: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "agentmemory.io/v1alpha1",
        "kind": "CompliancePolicy",
        "metadata": {"name": POLICY},
        "spec": {"frameworks": frameworks},
    }


def kustomize(path: str | Path) -> list[dict[str, Any]]:
    """`kubectl kustomize PATH` as a list of documents (raises with kubectl's message when it fails)."""
    done = subprocess.run(
        [str(kubectl_binary()), "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"kubectl kustomize {path} failed: {done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@dataclass
class Lifecycle:
    sandbox: Sandbox
    request_log: Path
    metrics_url: str
    #: scrapes taken while tenants were live and after they were deleted
    scrape_live: str = ""
    scrape_after_delete: str = ""
    #: a scrape once the report job's result reached the tenant's status
    scrape_jobs: str = ""
    #: every secret value the operator generated or was given (passwords, keyring keys, the store admin password)
    secret_values: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    #: what a user sees: `kubectl get agentmemory -A`, `kubectl describe`, `kubectl explain`
    get_all: str = ""
    describe: str = ""
    explain: str = ""

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.request_log.read_text().splitlines() if line.strip()]

    def scrape(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:  # loopback http
            return str(response.read().decode())


def _events(box: Sandbox) -> list[dict[str, Any]]:
    return list(get_json(box, "events", "-n", NAMESPACE)["items"])


def _secret_values(box: Sandbox, name: str) -> list[str]:
    """The sensitive values of a Secret, plus the encodings a leak could take (base64, URL-encoded)."""
    data = secret(box, NAMESPACE, name)
    found: list[str] = []
    for key in ("REDIS_PASSWORD", "MEMORY_KEYRING"):
        if key in data:
            found.append(data[key])
    if "MEMORY_KEYRING" in data:
        found += [k["key"] for k in json.loads(data["MEMORY_KEYRING"])["keys"]]
    return found


def with_encodings(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out += [value, base64.b64encode(value.encode()).decode(), urllib.parse.quote(value, safe="")]
    return sorted(set(out))


def _run(box: Sandbox, life: Lifecycle) -> None:
    box.kubectl("create", "namespace", NAMESPACE)
    beta_spec: dict[str, Any] = {"isolation": "strict", "agents": ["solo"], "deletionPolicy": "Retain"}
    if HAS_POLICIES:
        apply(box, policy_manifest(["GDPR"]))
        beta_spec["policyRefs"] = [{"name": POLICY}]
    apply(
        box,
        tenant_manifest(
            NAMESPACE,
            "alpha",
            isolation="moderate",
            agents=["reader", "writer"],
            quota={"memory": "1Mi", "keys": 100},
            deletionPolicy="Delete",
        ),
        tenant_manifest(NAMESPACE, "beta", **beta_spec),
        tenant_manifest(NAMESPACE, "lost", storeRef={"name": "no-such-store"}),
    )
    wait_condition(box, NAMESPACE, "alpha", "True")
    wait_condition(box, NAMESPACE, "beta", "True")
    wait_condition(box, NAMESPACE, "lost", "False", "StoreNotFound")
    for name in ("alpha-memory-credentials", "alpha-reader-memory-credentials", "alpha-writer-memory-credentials"):
        life.secret_values += _secret_values(box, name)
    for name in ("beta-memory-credentials", "beta-solo-memory-credentials", "alpha-memory-keys", "beta-memory-keys"):
        life.secret_values += _secret_values(box, name)
    life.secret_values.append(box.engine.admin_password)

    # Data, so usage and the quota ratio are non-zero once the timer measures them.
    client = login(box, NAMESPACE, "alpha-memory-credentials")
    prefix = secret(box, NAMESPACE, "alpha-memory-credentials")["MEMORY_KEY_PREFIX"]
    for i in range(5):
        client.set(f"{prefix}note:{i}", "x" * 100)
        client.hset(f"{prefix}shared:sizes", f"{prefix}note:{i}", 100)  # indexed, as the library writes them
    client.close()
    wait_until(
        lambda: (get_json(box, "memorytenant", "alpha", "-n", NAMESPACE)["status"].get("usage") or {}).get("keys") == 5,
        what="usage of alpha measured",
    )

    # Update: an agent removed -> its ACL user and Secret go (AgentRevoked).
    apply(
        box,
        tenant_manifest(
            NAMESPACE,
            "alpha",
            isolation="moderate",
            agents=["reader"],
            quota={"memory": "1Mi", "keys": 100},
            deletionPolicy="Delete",
        ),
    )
    wait_until(
        lambda: (
            box.kubectl("get", "secret", "alpha-writer-memory-credentials", "-n", NAMESPACE, check=False).returncode
            != 0
        ),
        what="the removed agent's Secret deleted",
    )

    # Drift: someone deletes an ACL user behind the operator's back -> DriftRepaired.
    admin = box.engine.admin_client()
    user = secret(box, NAMESPACE, "beta-memory-credentials")["REDIS_USERNAME"]
    admin.execute_command("ACL", "DELUSER", user)
    wait_until(lambda: any(e["reason"] == "DriftRepaired" for e in _events(box)), what="DriftRepaired Event")
    admin.close()
    life.get_all = box.kubectl("get", "agentmemory", "-A").stdout
    life.describe = box.kubectl("describe", "memorytenant", "beta", "-n", NAMESPACE).stdout
    life.explain = box.kubectl("explain", "memorytenant.spec").stdout

    if HAS_POLICIES:  # a policy change re-reconciles its bound tenants at once (get tenant, patch its status)
        apply(box, policy_manifest(["GDPR", "SOX"]))
        wait_until(
            lambda: (get_json(box, "compliancepolicy", POLICY).get("status") or {}).get("observedGeneration") == 2,
            what="the policy change handled",
        )

    wait_until(lambda: 'agentmemory_tenant_usage_keys{name="alpha"' in life.scrape(), what="usage metrics")
    life.scrape_live = life.scrape()

    # The tenant's jobs run (as a kubelet would) and the operator publishes the report as a ConfigMap.
    assert box.run_cronjob(NAMESPACE, "alpha-memory-report").succeeded
    wait_until(
        lambda: (
            box.kubectl("get", "configmap", "alpha-compliance-report", "-n", NAMESPACE, check=False).returncode == 0
        ),
        what="the compliance report ConfigMap",
    )
    wait_until(lambda: 'job="report"' in life.scrape(), what="the job series")
    life.scrape_jobs = life.scrape()

    # Deletion with both policies: Delete removes the keyring, Retain orphans it.
    box.kubectl("delete", "memorytenant", "alpha", "beta", "lost", "-n", NAMESPACE, "--wait=true", "--timeout=30s")
    wait_until(
        lambda: box.kubectl("get", "secret", "alpha-memory-keys", "-n", NAMESPACE, check=False).returncode != 0,
        what="alpha's keyring deleted",
    )
    if HAS_POLICIES:
        box.kubectl("delete", "compliancepolicy", POLICY, "--wait=true", "--timeout=30s")
    life.events = _events(box)

    def forgotten() -> bool:
        text = life.scrape()
        return 'name="alpha"' not in text and 'name="beta"' not in text

    wait_until(forgotten, what="deleted tenants' series dropped")
    life.scrape_after_delete = life.scrape()


@pytest.fixture(scope="session")
def lifecycle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lifecycle]:
    workdir = tmp_path_factory.mktemp("ops-sandbox")
    request_log = workdir / "requests.jsonl"
    port = free_port()
    box = Sandbox(
        workdir,
        resync_seconds=RESYNC_SECONDS,
        operator_args=("--debug", f"--metrics-address=127.0.0.1:{port}", "--leader-elect"),
    )
    life = Lifecycle(box, request_log, f"http://127.0.0.1:{port}/metrics")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(REQUEST_LOG_ENV, str(request_log))  # inherited by the sandbox API process only at start
        box.start()
    try:
        _run(box, life)
        yield life
    finally:
        box.stop()


__all__ = ["HAS_POLICIES", "NAMESPACE", "ROOT", "Lifecycle", "kustomize", "with_encodings"]
