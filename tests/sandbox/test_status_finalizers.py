"""Status subresource, finalizers and deletionTimestamp."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .manifests import GROUP, PLURAL, VERSION, widget


@pytest.fixture
def obj(custom: client.CustomObjectsApi, widgets: dict[str, Any]) -> dict[str, Any]:
    return dict(custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("w")))


def patch(custom: client.CustomObjectsApi, body: Any, status: bool = False) -> dict[str, Any]:
    call = custom.patch_namespaced_custom_object_status if status else custom.patch_namespaced_custom_object
    return dict(call(GROUP, VERSION, "default", PLURAL, "w", body))


def read(custom: client.CustomObjectsApi) -> dict[str, Any]:
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w"))


def test_status_patch_changes_only_status(custom: client.CustomObjectsApi, obj: dict[str, Any]) -> None:
    patched = patch(custom, {"spec": {"size": 9}, "status": {"ok": True}}, status=True)
    assert patched["status"] == {"ok": True} and patched["spec"]["size"] == 3
    assert patched["metadata"]["generation"] == 1


def test_main_resource_write_ignores_status(custom: client.CustomObjectsApi, obj: dict[str, Any]) -> None:
    patched = patch(custom, {"spec": {"size": 4}, "status": {"ok": True}})
    assert "status" not in patched and patched["spec"]["size"] == 4


def test_status_is_dropped_on_create(custom: client.CustomObjectsApi, widgets: dict[str, Any]) -> None:
    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, {**widget("s"), "status": {"x": 1}}
    )
    assert "status" not in created


def test_delete_with_finalizer_sets_deletion_timestamp_and_keeps_object(
    custom: client.CustomObjectsApi, obj: dict[str, Any]
) -> None:
    patch(custom, {"metadata": {"finalizers": ["test/hold"]}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w")
    held = read(custom)
    assert held["metadata"]["deletionTimestamp"] and held["metadata"]["deletionGracePeriodSeconds"] == 0


def test_removing_last_finalizer_deletes_terminating_object(
    custom: client.CustomObjectsApi, obj: dict[str, Any]
) -> None:
    patch(custom, {"metadata": {"finalizers": ["test/hold"]}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w")
    patch(custom, {"spec": {"size": 5}})  # terminating objects still take spec changes
    patch(custom, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as caught:
        read(custom)
    assert caught.value.status == 404


def test_terminating_object_refuses_new_finalizers(custom: client.CustomObjectsApi, obj: dict[str, Any]) -> None:
    patch(custom, {"metadata": {"finalizers": ["test/hold"]}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w")
    with pytest.raises(ApiException) as caught:
        patch(custom, {"metadata": {"finalizers": ["test/hold", "test/other"]}})
    assert caught.value.status == 422
