"""CRD schema handling: defaulting, pruning, validation errors with field paths, fieldValidation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from memory_sandbox.apiserver import ApiServer

from .manifests import GROUP, PLURAL, VERSION, widget, widget_crd


def create(custom: client.CustomObjectsApi, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return dict(custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body, **kwargs))


def rejection(custom: client.CustomObjectsApi, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        create(custom, body, **kwargs)
    return {**json.loads(caught.value.body), "http": caught.value.status}


def test_defaults_are_applied(custom: client.CustomObjectsApi, widgets: dict[str, Any]) -> None:
    assert create(custom, widget("w"))["spec"]["color"] == "red"


def test_unknown_fields_are_pruned(custom: client.CustomObjectsApi, widgets: dict[str, Any]) -> None:
    created = create(custom, widget("w", typo=1, extra={"free": {"form": True}}))
    assert "typo" not in created["spec"] and created["spec"]["extra"] == {"free": {"form": True}}


def test_strict_field_validation_rejects_unknown_fields(
    custom: client.CustomObjectsApi, widgets: dict[str, Any]
) -> None:
    status = rejection(custom, widget("w", typo=1), field_validation="Strict")
    assert status["http"] == 400 and 'unknown field "spec.typo"' in status["message"]


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ({"size": 0}, "spec.size", "FieldValueInvalid"),
        ({"size": 11}, "spec.size", "FieldValueInvalid"),
        ({"size": "big"}, "spec.size", "FieldValueTypeInvalid"),
        ({"size": 1, "color": "pink"}, "spec.color", "FieldValueNotSupported"),
        ({"size": 1, "label": "UPPER"}, "spec.label", "FieldValueInvalid"),
        ({"size": 1, "label": "waytoolongforit"}, "spec.label", "FieldValueTooLong"),
        ({"size": 1, "tags": ["a", "b", "c"]}, "spec.tags", "FieldValueTooMany"),
        ({"size": 1, "owner": {}}, "spec.owner.name", "FieldValueRequired"),
        ({"size": 1, "owner": {"name": ""}}, "spec.owner.name", "FieldValueInvalid"),
        ({"size": 1, "tags": [1]}, "spec.tags[0]", "FieldValueTypeInvalid"),
    ],
)
def test_violation_is_422_invalid_naming_the_field(
    custom: client.CustomObjectsApi, widgets: dict[str, Any], spec: dict[str, Any], field: str, reason: str
) -> None:
    body = {**widget("w"), "spec": spec}
    status = rejection(custom, body)
    assert status["http"] == 422 and status["reason"] == "Invalid"
    assert {"field": field, "reason": reason} in [
        {"field": c["field"], "reason": c["reason"]} for c in status["details"]["causes"]
    ]


def test_missing_required_spec_field(custom: client.CustomObjectsApi, widgets: dict[str, Any]) -> None:
    status = rejection(custom, {**widget("w"), "spec": {}})
    assert status["details"]["causes"][0] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.size",
    }


def test_patch_is_validated_too(custom: client.CustomObjectsApi, widgets: dict[str, Any]) -> None:
    create(custom, widget("w"))
    with pytest.raises(ApiException) as caught:
        custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w", {"spec": {"size": 100}})
    assert caught.value.status == 422


def test_validation_can_be_switched_off() -> None:
    with ApiServer(validate_schemas=False) as api:
        kube = client.ApiClient(client.Configuration(host=api.url))
        client.ApiextensionsV1Api(kube).create_custom_resource_definition(widget_crd())
        created = client.CustomObjectsApi(kube).create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, widget("w", size=99, typo=1)
        )
    assert created["spec"] == {"size": 99, "typo": 1}
