"""The patch flavours, as pure functions and through the API."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from memory_sandbox.apiserver.errors import ApiError
from memory_sandbox.apiserver.patch import apply_config, json_patch, merge_patch, strategic_merge

from .manifests import GROUP, PLURAL, VERSION, widget


def test_merge_patch_null_deletes_and_maps_merge() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": None}, "e": [1]}) == {
        "a": {"c": 2},
        "d": 3,
        "e": [1],
    }


def test_json_patch_add_replace_remove_move_copy_and_test() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "replace", "path": "/b/c", "value": 2},
        {"op": "copy", "from": "/b/c", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e"},
        {"op": "remove", "path": "/a/0"},
        {"op": "test", "path": "/e", "value": 2},
    ]
    assert json_patch(doc, ops) == {"a": [2, 3], "b": {"c": 2}, "e": 2}


def test_json_patch_on_missing_path_is_bad_request() -> None:
    with pytest.raises(ApiError) as caught:
        json_patch({}, [{"op": "remove", "path": "/nope"}])
    assert caught.value.code == 400


def test_strategic_merge_merges_containers_by_name() -> None:
    current = {
        "containers": [{"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]}, {"name": "b", "image": "y"}]
    }
    patch = {
        "containers": [{"name": "a", "env": [{"name": "L", "value": "2"}]}],
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
    }
    merged = strategic_merge(current, patch)
    assert merged["containers"][0] == {
        "name": "a",
        "image": "x",
        "env": [{"name": "K", "value": "1"}, {"name": "L", "value": "2"}],
    }
    assert merged["containers"][1] == {"name": "b", "image": "y"}


def test_strategic_merge_delete_directive_removes_list_element() -> None:
    current = {"env": [{"name": "A"}, {"name": "B"}]}
    assert strategic_merge(current, {"env": [{"name": "A", "$patch": "delete"}]}) == {"env": [{"name": "B"}]}


def test_strategic_merge_unions_finalizers() -> None:
    assert strategic_merge({"finalizers": ["a"]}, {"finalizers": ["b"]}) == {"finalizers": ["a", "b"]}


def test_apply_removes_fields_the_manager_stopped_sending() -> None:
    current = {"spec": {"size": 3, "color": "red", "label": "x"}}
    applied = apply_config(current, {"spec": {"size": 4}}, {("spec", "size"), ("spec", "label")})
    assert applied == {"spec": {"size": 4, "color": "red"}}


def test_json_patch_through_the_api(custom: client.CustomObjectsApi, widgets: dict[str, Any]) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("w"))
    patched = custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "w",
        [{"op": "replace", "path": "/spec/size", "value": 5}],
        _content_type="application/json-patch+json",
    )
    assert patched["spec"]["size"] == 5


def test_strategic_merge_patch_on_custom_resource_is_unsupported(
    custom: client.CustomObjectsApi, widgets: dict[str, Any]
) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("w"))
    with pytest.raises(ApiException) as caught:
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            PLURAL,
            "w",
            {"spec": {"size": 2}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert caught.value.status == 415


def apply(core: client.CoreV1Api, body: dict[str, Any], manager: str, force: bool = False) -> Any:
    return core.patch_namespaced_config_map(
        body["metadata"]["name"],
        "default",
        body,
        field_manager=manager or None,
        force=force,
        _content_type="application/apply-patch+yaml",
    )


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_server_side_apply_creates_then_updates(core: client.CoreV1Api) -> None:
    apply(core, cm("c", a="1", b="2"), "tester")
    updated = apply(core, cm("c", a="3"), "tester")
    assert updated.data == {"a": "3"}
    assert updated.metadata.managed_fields[0].manager == "tester"


def test_server_side_apply_conflicts_with_another_manager_unless_forced(core: client.CoreV1Api) -> None:
    apply(core, cm("c", a="1"), "first")
    with pytest.raises(ApiException) as caught:
        apply(core, cm("c", a="2"), "second")
    assert caught.value.status == 409 and "conflict" in caught.value.body
    assert apply(core, cm("c", a="2"), "second", force=True).data == {"a": "2"}


def test_server_side_apply_requires_field_manager(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        apply(core, cm("c", a="1"), "")
    assert caught.value.status == 422


def test_reapplying_identical_secret_config_keeps_resource_version(core: client.CoreV1Api) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}

    def apply_secret() -> Any:
        return core.patch_namespaced_secret(
            "s", "default", body, field_manager="op", force=True, _content_type="application/apply-patch+yaml"
        )

    first = apply_secret()
    again = apply_secret()
    assert again.data == {"k": "dg=="} and again.metadata.resource_version == first.metadata.resource_version
