"""Least privilege, checked: the RBAC rules grant exactly what the operator was seen to call, nothing more.

The operator ran a full lifecycle against the sandbox API, which recorded every request (conftest). Each
request is mapped to the (apiGroup, resource, verb) an RBAC authorizer would check. A static scan of
`clients/kube.py` guards the other direction: every API method the code can call must have been exercised by
the lifecycle, so a new code path cannot hide from this test by not being run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from memory_sandbox.cronjobs import KUBELET_USER_AGENT
from tests.ops.conftest import ROOT, Lifecycle, kustomize

pytestmark = pytest.mark.e2e

Permission = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)
KUBE_CLIENT = ROOT / "operator" / "memory_operator" / "clients" / "kube.py"
#: Non-resource URLs every authenticated client may read (the system:discovery ClusterRole).
DISCOVERY = re.compile(r"^/(version|api(/[^/]+)?|apis(/[^/]+(/[^/]+)?)?|openapi(/.*)?)/?$")


def permission(method: str, path: str, query: dict[str, str]) -> Permission:
    """What RBAC checks for one request: /api/v1/... is the core group, /apis/G/V/... group G."""
    parts = [p for p in path.split("/") if p]
    if parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":  # namespaced resource (but not /namespaces/NAME itself)
        rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    verb = {
        "GET": "get" if name else ("watch" if query.get("watch") in ("true", "1") else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }[method]
    return group, resource, verb


def operator_requests(lifecycle: Lifecycle) -> list[dict[str, Any]]:
    """Everything but kubectl (the test's own tool), the sandbox's readiness probe and its kubelet stand-in."""
    return [
        r
        for r in lifecycle.requests()
        if not r["userAgent"].startswith(("kubectl/", "Python-urllib/", KUBELET_USER_AGENT))
        and not DISCOVERY.match(r["path"])
    ]


def observed(lifecycle: Lifecycle) -> set[Permission]:
    seen = set()
    for r in operator_requests(lifecycle):
        group, resource, verb = permission(r["method"], r["path"], r["query"])
        seen.add((group, resource, verb))
        if verb == "patch" and r.get("contentType", "").startswith("application/apply-patch"):
            seen.add((group, resource, "create"))  # server-side apply of an absent object is authorized as create
    return seen


def granted(docs: list[dict[str, Any]]) -> set[Permission]:
    found: set[Permission] = set()
    for doc in docs:
        if doc["kind"] not in ("ClusterRole", "Role"):
            continue
        for rule in doc.get("rules", []):
            assert "nonResourceURLs" not in rule, "the operator needs no non-resource URLs beyond discovery"
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        found.add((group, resource, verb))
    return found


def test_the_operator_is_seen_through_both_of_its_clients(lifecycle: Lifecycle) -> None:
    agents = {r["userAgent"].split("/")[0] for r in operator_requests(lifecycle)}
    assert agents == {"kopf", "OpenAPI-Generator"}  # kopf itself and clients/kube.py


def test_rbac_has_no_wildcards() -> None:
    for doc in kustomize(ROOT / "deploy" / "base"):
        for rule in doc.get("rules", []):
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), f"{doc['kind']} {doc['metadata']['name']}: wildcard in {key}"


def test_rbac_grants_every_call_the_operator_makes(lifecycle: Lifecycle) -> None:
    missing = observed(lifecycle) - granted(kustomize(ROOT / "deploy" / "base"))
    assert not missing, f"deploy/base/rbac.yaml lacks: {sorted(missing)}"


def test_rbac_grants_nothing_the_operator_does_not_use(lifecycle: Lifecycle) -> None:
    unused = granted(kustomize(ROOT / "deploy" / "base")) - observed(lifecycle)
    assert not unused, f"deploy/base/rbac.yaml grants what the operator never calls: {sorted(unused)}"


def test_the_operator_service_account_is_the_one_bound(lifecycle: Lifecycle) -> None:
    docs = kustomize(ROOT / "deploy" / "base")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": deployment["metadata"]["namespace"]}
    ]
    assert binding["roleRef"]["name"] == next(d for d in docs if d["kind"] == "ClusterRole")["metadata"]["name"]


# The static side: the kubernetes-client methods clients/kube.py calls, and the verbs they need.
_VERB_PREFIXES = {
    "read": "get",
    "get": "get",
    "list": "list",
    "create": "create",
    "patch": "patch",
    "replace": "update",
    "delete": "delete",
}


#: the kubernetes-client API objects clients/kube.py holds, and the API group each serves
_API_GROUPS = {"_core": "", "_batch": "batch", "_custom": "agentmemory.io", "_leases": "coordination.k8s.io"}
#: the modules that call the API besides kopf: the reconcilers' client and leader election
CLIENTS = (KUBE_CLIENT, KUBE_CLIENT.with_name("lease.py"))


def client_calls(source: Path) -> set[str]:
    """`<api>.<method>` for each method of `self._core`, `self._batch` or `self._custom` the code calls or
    hands on (e.g. to a helper that calls it)."""
    calls: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "self"
            and node.value.attr in _API_GROUPS
        ):
            calls.add(f"{node.value.attr}.{node.attr}")
    return calls


def static_permission(call: str) -> Permission:
    """`_core.read_namespaced_secret` -> ("", "secrets", "get"); `_batch.patch_namespaced_cron_job` ->
    ("batch", "cronjobs", "patch"); custom objects: (our group, "*" or "*/status", verb)."""
    api, method = call.split(".")
    verb, rest = method.split("_", maxsplit=1)
    if "custom_object" in method:
        return _API_GROUPS[api], "*/status" if method.endswith("_status") else "*", _VERB_PREFIXES[verb]
    kind = rest.removeprefix("namespaced_").replace("_", "")
    return _API_GROUPS[api], kind + "s", _VERB_PREFIXES[verb]


def test_the_static_scan_finds_the_clients_calls() -> None:
    calls = set().union(*map(client_calls, CLIENTS))
    assert "_leases.replace_namespaced_lease" in calls
    assert static_permission("_leases.replace_namespaced_lease") == ("coordination.k8s.io", "leases", "update")
    assert {
        "_core.read_namespaced_secret",
        "_core.create_namespaced_secret",
        "_custom.get_cluster_custom_object",
    } <= calls
    assert static_permission("_core.delete_namespaced_secret") == ("", "secrets", "delete")
    assert static_permission("_core.patch_namespaced_config_map") == ("", "configmaps", "patch")
    assert static_permission("_batch.patch_namespaced_cron_job") == ("batch", "cronjobs", "patch")
    assert static_permission("_custom.patch_namespaced_custom_object_status") == (
        "agentmemory.io",
        "*/status",
        "patch",
    )


def test_the_lifecycle_exercises_every_api_call_in_the_code(lifecycle: Lifecycle) -> None:
    seen = observed(lifecycle)
    for method in sorted(set().union(*map(client_calls, CLIENTS))):
        group, resource, verb = static_permission(method)
        if resource.startswith("*"):
            suffix = resource[1:]
            hit = any(g == group and v == verb and ("/" in r) == bool(suffix) for g, r, v in seen)
        else:
            hit = (group, resource, verb) in seen
        assert hit, f"the operator's clients call {method} but the recorded lifecycle never did: extend tests/ops"


def test_request_log_maps_requests_to_rbac_permissions() -> None:
    assert DISCOVERY.match("/api/v1") and DISCOVERY.match("/apis/agentmemory.io/v1alpha1")
    assert not DISCOVERY.match("/api/v1/secrets") and not DISCOVERY.match("/apis/g/v1/things")
    assert permission("GET", "/api/v1/namespaces/ns/secrets/x", {}) == ("", "secrets", "get")
    assert permission("GET", "/api/v1/namespaces/ns/secrets", {}) == ("", "secrets", "list")
    assert permission("GET", "/api/v1/namespaces", {"watch": "true"}) == ("", "namespaces", "watch")
    assert permission("GET", "/api/v1/namespaces/ns", {}) == ("", "namespaces", "get")
    assert permission("PATCH", "/apis/agentmemory.io/v1alpha1/namespaces/n/memorytenants/t/status", {}) == (
        "agentmemory.io",
        "memorytenants/status",
        "patch",
    )
    assert permission("PATCH", "/apis/agentmemory.io/v1alpha1/memorystores/s", {}) == (
        "agentmemory.io",
        "memorystores",
        "patch",
    )
    assert permission("DELETE", "/api/v1/namespaces/n/secrets", {}) == ("", "secrets", "deletecollection")
