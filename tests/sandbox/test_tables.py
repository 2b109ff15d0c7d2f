"""Server-side Tables and the JSONPath subset behind printer columns."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from typing import Any

from kubernetes import client

from memory_sandbox.apiserver import ApiServer
from memory_sandbox.apiserver.tables import human_age, jsonpath

from .manifests import GROUP, PLURAL, VERSION, widget

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def get_table(api: ApiServer, path: str) -> dict[str, Any]:
    request = urllib.request.Request(api.url + path, headers={"Accept": TABLE})
    with urllib.request.urlopen(request) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def test_jsonpath_filter_expression() -> None:
    obj = {"status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}}
    assert jsonpath(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]


def test_jsonpath_index_and_wildcard() -> None:
    obj = {"spec": {"agents": [{"name": "a"}, {"name": "b"}]}}
    assert jsonpath(obj, ".spec.agents[*].name") == ["a", "b"] and jsonpath(obj, "{.spec.agents[1].name}") == ["b"]


def test_human_age() -> None:
    now = dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    assert human_age("2025-01-01T23:55:00Z", now) == "5m" and human_age("2024-12-30T00:00:00Z", now) == "3d"


def test_crd_table_uses_additional_printer_columns(
    api: ApiServer, custom: client.CustomObjectsApi, widgets: dict[str, Any]
) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("w", size=4))
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "w", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    )
    table = get_table(api, f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Ready", "Age"]
    assert table["rows"][0]["cells"][:3] == ["w", 4, "True"]
    assert table["rows"][0]["object"]["metadata"]["namespace"] == "default"


def test_builtin_table_has_name_and_age(api: ApiServer, core: client.CoreV1Api) -> None:
    table = get_table(api, "/api/v1/namespaces")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert table["rows"][0]["cells"][:2] == ["default", "Active"]
