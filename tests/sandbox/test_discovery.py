"""Discovery: built-in groups, CRDs learned on create and forgotten on delete, kubectl's view of them."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from kubernetes import client

from memory_sandbox.apiserver import ApiServer

from .conftest import Kubectl
from .manifests import GROUP, PLURAL, VERSION, widget_crd


def fetch(api: ApiServer, path: str, accept: str = "application/json") -> tuple[str, Any]:
    request = urllib.request.Request(api.url + path, headers={"Accept": accept})
    with urllib.request.urlopen(request) as response:
        return response.headers["Content-Type"], json.loads(response.read())


def resource_names(api: ApiServer, group_version_path: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in fetch(api, group_version_path)[1]["resources"]}


def test_version_reports_a_kubernetes_version(api: ApiServer) -> None:
    _, version = fetch(api, "/version")
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")


def test_core_group_lists_builtin_kinds_with_scope(api: ApiServer) -> None:
    resources = resource_names(api, "/api/v1")
    assert resources["namespaces"]["namespaced"] is False
    assert resources["secrets"]["namespaced"] is True
    assert {"configmaps", "serviceaccounts", "events", "namespaces/status"} <= resources.keys()


def test_groups_include_batch_events_and_apiextensions(api: ApiServer) -> None:
    groups = {g["name"] for g in fetch(api, "/apis")[1]["groups"]}
    assert {"batch", "events.k8s.io", "apiextensions.k8s.io"} <= groups
    assert {"cronjobs", "jobs"} <= resource_names(api, "/apis/batch/v1").keys()


def test_created_crd_appears_with_short_names_categories_and_status(api: ApiServer, widgets: dict[str, Any]) -> None:
    resources = resource_names(api, f"/apis/{GROUP}/{VERSION}")
    assert resources[PLURAL]["shortNames"] == ["wdg"]
    assert resources[PLURAL]["categories"] == ["sandboxtest"]
    assert "watch" in resources[PLURAL]["verbs"]
    assert resources[f"{PLURAL}/status"]["verbs"] == ["get", "patch", "update"]
    assert fetch(api, f"/apis/{GROUP}")[1]["preferredVersion"]["version"] == VERSION


def test_deleted_crd_is_forgotten(api: ApiServer, kube: client.ApiClient, widgets: dict[str, Any]) -> None:
    client.ApiextensionsV1Api(kube).delete_custom_resource_definition(widgets["metadata"]["name"])
    assert GROUP not in {g["name"] for g in fetch(api, "/apis")[1]["groups"]}


def test_aggregated_discovery_request_gets_legacy_json(api: ApiServer) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    content_type, body = fetch(api, "/apis", accept)
    assert content_type.startswith("application/json") and body["kind"] == "APIGroupList"


def test_crd_is_established_at_once(kube: client.ApiClient, widgets: dict[str, Any]) -> None:
    crd = client.ApiextensionsV1Api(kube).read_custom_resource_definition(widgets["metadata"]["name"])
    assert {c.type: c.status for c in crd.status.conditions}["Established"] == "True"


def test_kubectl_api_resources_lists_learned_crd(any_kubectl: Kubectl, widgets: dict[str, Any]) -> None:
    output = any_kubectl.run("api-resources", f"--api-group={GROUP}").stdout
    assert PLURAL in output and "wdg" in output


def test_kubectl_sees_crd_applied_after_its_cache_was_filled(kubectl: Kubectl) -> None:
    kubectl.run("get", "namespaces")  # fills the discovery cache without the CRD
    kubectl.run("apply", "-f", "-", stdin=json.dumps(widget_crd()))
    assert kubectl.run("get", "widgets").returncode == 0


def test_openapi_v3_serves_crd_schema(api: ApiServer, widgets: dict[str, Any]) -> None:
    _, root = fetch(api, "/openapi/v3")
    url = root["paths"][f"apis/{GROUP}/{VERSION}"]["serverRelativeURL"]
    _, document = fetch(api, url)
    schema = document["components"]["schemas"][f"test.sandbox.{VERSION}.Widget"]
    assert schema["properties"]["spec"]["required"] == ["size"]
