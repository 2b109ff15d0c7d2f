"""deploy/: every kustomization renders, and what it renders is fit for a real cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import memory_operator.__main__
from tests.ops.conftest import ROOT, kustomize

DEPLOY = ROOT / "deploy"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
TARGETS = [DEPLOY / "base", *OVERLAYS]
NAMESPACE = "memory-system"


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(DEPLOY)) for p in paths]


def deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == "Deployment"]
    return found


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = deployment(docs)["spec"]["template"]["spec"]["containers"]
    return dict(found)


def flag(args: list[str], name: str) -> str | None:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")]
    return values[-1] if values else None  # argparse: the last one wins


@pytest.fixture(scope="module", params=TARGETS, ids=ids(TARGETS))
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return kustomize(request.param)


def test_there_are_dev_and_prod_overlays() -> None:
    assert {p.name for p in OVERLAYS} >= {"dev", "prod"}


def test_two_replicas_elect_a_leader_and_roll_without_a_gap(rendered: list[dict[str, Any]]) -> None:
    spec = deployment(rendered)["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert "--leader-elect" in container(rendered)["args"]  # without it, two replicas would both reconcile
    (budget,) = [d for d in rendered if d["kind"] == "PodDisruptionBudget"]
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    (role,) = [d for d in rendered if d["kind"] == "Role" and d["metadata"]["name"].endswith("leader-election")]
    assert role["metadata"]["namespace"] == deployment(rendered)["metadata"]["namespace"]
    named = [r for r in role["rules"] if set(r["verbs"]) & {"get", "update"}]
    assert all(r.get("resourceNames") == ["agent-memory-operator"] for r in named)
    (binding,) = [
        d for d in rendered if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == role["metadata"]["name"]
    ]
    account = spec["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": role["metadata"]["namespace"]}
    ]


def test_probes_point_at_kopfs_liveness_endpoint(rendered: list[dict[str, Any]]) -> None:
    c = container(rendered)
    liveness = flag(c["args"], "--liveness")
    assert liveness is not None
    port = int(liveness.rsplit(":", 1)[1].split("/")[0])
    path = "/" + liveness.split("/", 3)[3]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == path
        assert ports[get["port"]] == port


def test_metrics_are_served_on_the_declared_port(rendered: list[dict[str, Any]]) -> None:
    c = container(rendered)
    address = flag(c["args"], "--metrics-address")
    assert address is not None
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert int(address.rsplit(":", 1)[1]) == ports["metrics"]
    (service,) = [d for d in rendered if d["kind"] == "Service"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    labels = deployment(rendered)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_resources_have_requests_and_a_memory_limit(rendered: list[dict[str, Any]]) -> None:
    resources = container(rendered)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_the_pod_meets_the_restricted_pod_security_standard(rendered: list[dict[str, Any]]) -> None:
    pod = deployment(rendered)["spec"]["template"]["spec"]
    c = container(rendered)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert all(set(v) <= {"name", "emptyDir", "configMap", "secret", "projected"} for v in pod.get("volumes", []))
    (ns,) = [d for d in rendered if d["kind"] == "Namespace"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_namespaced_objects_live_in_the_operator_namespace(rendered: list[dict[str, Any]]) -> None:
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for doc in rendered:
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']} {doc['metadata']['name']}"


def test_the_image_is_a_published_name_not_the_placeholder(rendered: list[dict[str, Any]]) -> None:
    image = container(rendered)["image"]
    assert "/" in image and (":" in image or "@sha256:" in image)


def test_the_crds_are_exactly_those_in_crds(rendered: list[dict[str, Any]]) -> None:
    committed = {
        doc["metadata"]["name"]: doc
        for path in sorted((ROOT / "crds").glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    }
    in_render = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "CustomResourceDefinition"}
    assert set(in_render) == set(committed)
    for name, crd in in_render.items():
        # The base's common labels are added to every object; everything else must be identical.
        labels = {k: v for k, v in crd["metadata"].get("labels", {}).items() if not k.startswith("app.kubernetes.io/")}
        assert {**crd, "metadata": {**crd["metadata"], "labels": labels}} == {
            **committed[name],
            "metadata": {**committed[name]["metadata"], "labels": committed[name]["metadata"].get("labels", {})},
        }, name


def test_tenant_cronjobs_run_the_operators_own_image(rendered: list[dict[str, Any]]) -> None:
    operator = container(rendered)
    env = {e["name"]: e.get("value") for e in operator.get("env", [])}
    assert env["AGENTMEMORY_JOB_IMAGE"] == operator["image"]


def _secrets_verbs(docs: list[dict[str, Any]]) -> set[str]:
    (role,) = [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "agent-memory-operator"]
    (rule,) = [r for r in role["rules"] if r.get("apiGroups") == [""] and "secrets" in r["resources"]]
    return set(rule["verbs"])


def test_the_secrets_by_name_component_drops_list_and_watch_and_passes_the_flag(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    relative = Path(*[".."] * len(overlay.parts[1:]), *ROOT.parts[1:])  # kustomize takes relative roots only
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [str(relative / "deploy" / "base")],
                "components": [str(relative / "deploy" / "components" / "secrets-by-name")],
            }
        )
    )
    docs = kustomize(overlay)
    assert {"list", "watch"} <= _secrets_verbs(kustomize(DEPLOY / "base"))
    assert _secrets_verbs(docs) == {"get", "create", "patch", "delete"}
    args = container(docs)["args"]
    assert "--no-watch-secrets" in args
    parsed = memory_operator.__main__.parser().parse_args(args)
    assert parsed.watch_secrets is False
