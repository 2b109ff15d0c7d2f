"""Verbs and server-owned metadata through the `kubernetes` client."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .manifests import GROUP, PLURAL, VERSION, widget


def secret(name: str = "", **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, **metadata}, "stringData": {"k": "v"}} if name else {"metadata": metadata}


def test_default_namespace_exists_at_start(core: client.CoreV1Api) -> None:
    assert "default" in {ns.metadata.name for ns in core.list_namespace().items}


def test_create_assigns_uid_resource_version_generation_and_timestamp(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"a": "b"}})
    assert created.metadata.uid and created.metadata.resource_version.isdigit()
    assert created.metadata.generation == 1 and created.metadata.creation_timestamp is not None


def test_resource_versions_increase_across_kinds(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    second = core.create_namespaced_secret("default", secret("b"))
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)


def test_generate_name_gets_a_random_suffix(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"generateName": "cm-"}})
    assert created.metadata.name.startswith("cm-") and len(created.metadata.name) == 8


def test_secret_string_data_is_stored_as_base64_data(core: client.CoreV1Api) -> None:
    core.create_namespaced_secret("default", secret("s"))
    stored = core.read_namespaced_secret("s", "default")
    assert stored.data == {"k": "dg=="} and stored.string_data is None and stored.type == "Opaque"


def test_create_in_missing_namespace_is_not_found(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("nowhere", {"metadata": {"name": "c"}})
    assert caught.value.status == 404 and '"reason":"NotFound"' in caught.value.body


def test_create_twice_is_already_exists(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    assert caught.value.status == 409 and "AlreadyExists" in caught.value.body


def test_invalid_name_is_rejected(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("default", {"metadata": {"name": "Not_Valid"}})
    assert caught.value.status == 422 and "metadata.name" in caught.value.body


def test_list_has_kind_api_version_and_resource_version(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    listed = core.list_namespaced_config_map("default")
    assert listed.kind == "ConfigMapList" and listed.api_version == "v1" and listed.metadata.resource_version
    assert [c.metadata.name for c in listed.items] == ["c"] and listed.items[0].kind == "ConfigMap"


def test_list_across_namespaces(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "other"}})
    for namespace in ("default", "other"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    assert sorted(c.metadata.namespace for c in core.list_config_map_for_all_namespaces().items) == ["default", "other"]


def test_list_pages_with_limit_and_continue(core: client.CoreV1Api) -> None:
    for i in range(5):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
    first = core.list_namespaced_config_map("default", limit=2)
    rest = core.list_namespaced_config_map("default", limit=10, _continue=first.metadata._continue)
    assert [c.metadata.name for c in first.items + rest.items] == [f"c{i}" for i in range(5)]


def test_replace_with_stale_resource_version_conflicts(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    core.replace_namespaced_config_map(
        "c",
        "default",
        {"metadata": {"name": "c", "resourceVersion": created.metadata.resource_version}, "data": {"a": "2"}},
    )
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map(
            "c",
            "default",
            {"metadata": {"name": "c", "resourceVersion": created.metadata.resource_version}, "data": {"a": "3"}},
        )
    assert caught.value.status == 409 and '"reason":"Conflict"' in caught.value.body


def test_generation_moves_on_spec_change_only(custom: client.CustomObjectsApi, widgets: dict[str, Any]) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("w"))
    labelled = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "w", {"metadata": {"labels": {"a": "b"}}}
    )
    assert labelled["metadata"]["generation"] == 1
    resized = custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w", {"spec": {"size": 4}})
    assert resized["metadata"]["generation"] == 2


def test_no_op_patch_keeps_resource_version(custom: client.CustomObjectsApi, widgets: dict[str, Any]) -> None:
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("w"))
    patched = custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w", {"spec": {"size": 3}})
    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_dry_run_does_not_persist(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}}, dry_run="All")
    assert core.list_namespaced_config_map("default").items == []


def test_delete_removes_the_object(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    core.delete_namespaced_config_map("c", "default")
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("c", "default")
    assert caught.value.status == 404


def test_delete_collection_honours_label_selector(core: client.CoreV1Api) -> None:
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": {"tier": tier}}})
    core.delete_collection_namespaced_config_map("default", label_selector="tier=x")
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == ["c"]


def test_cluster_scoped_kind_has_no_namespace(custom: client.CustomObjectsApi, core: client.CoreV1Api) -> None:
    created = core.create_namespace({"metadata": {"name": "team-a"}})
    assert created.metadata.namespace is None and created.status.phase == "Active"


def test_errors_are_status_objects(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_secret("missing", "default")
    assert '"kind":"Status"' in caught.value.body and '"code":404' in caught.value.body
