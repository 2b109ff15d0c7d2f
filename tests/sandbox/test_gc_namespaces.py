"""Garbage collection by ownerReferences and namespace deletion."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .manifests import GROUP, PLURAL, VERSION, widget


def owned_config_map(
    core: client.CoreV1Api, name: str, owner: dict[str, Any], namespace: str = "default", **meta: Any
) -> None:
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "ownerReferences": [ref], **meta}})


def names(core: client.CoreV1Api, namespace: str = "default") -> list[str]:
    return [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]


@pytest.fixture
def owner(custom: client.CustomObjectsApi, widgets: dict[str, Any]) -> dict[str, Any]:
    return dict(custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("owner")))


def test_deleting_owner_deletes_dependents(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, owner: dict[str, Any]
) -> None:
    owned_config_map(core, "child", owner)
    core.create_namespaced_config_map("default", {"metadata": {"name": "bystander"}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "owner")
    assert names(core) == ["bystander"]


def test_dependent_with_finalizer_is_marked_terminating(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, owner: dict[str, Any]
) -> None:
    owned_config_map(core, "child", owner, finalizers=["test/hold"])
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "owner")
    assert core.read_namespaced_config_map("child", "default").metadata.deletion_timestamp is not None


def test_owner_with_finalizer_keeps_dependents_until_removed(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, owner: dict[str, Any]
) -> None:
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "owner", {"metadata": {"finalizers": ["test/hold"]}}
    )
    owned_config_map(core, "child", owner)
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "owner")
    assert names(core) == ["child"]
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "owner", {"metadata": {"finalizers": None}}
    )
    assert names(core) == []


def test_orphan_propagation_keeps_dependents(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, owner: dict[str, Any]
) -> None:
    owned_config_map(core, "child", owner)
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "owner", propagation_policy="Orphan")
    assert core.read_namespaced_config_map("child", "default").metadata.owner_references is None


def test_dangling_owner_reference_is_not_collected_at_creation(core: client.CoreV1Api) -> None:
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "no-such-uid"}}
    owned_config_map(core, "child", ghost)
    assert names(core) == ["child"]


def test_deleting_namespace_deletes_its_objects(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    core.delete_namespace("doomed")
    with pytest.raises(ApiException) as caught:
        core.read_namespace("doomed")
    assert caught.value.status == 404 and names(core, "doomed") == []


def test_namespace_with_finalized_content_stays_terminating(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "c", "finalizers": ["test/hold"]}})
    core.delete_namespace("doomed")
    assert core.read_namespace("doomed").status.phase == "Terminating"
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("doomed", {"metadata": {"name": "new"}})
    assert caught.value.status == 403
    core.patch_namespaced_config_map("c", "doomed", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException):
        core.read_namespace("doomed")
