"""CRD `x-kubernetes-validations`: CEL rules refused and accepted as kube-apiserver does, via the client and kubectl."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import Kubectl

GROUP, VERSION, PLURAL, KIND = "cel.sandbox.test", "v1", "gadgets", "Gadget"
ROOT = "spec.versions[0].schema.openAPIV3Schema"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "x-kubernetes-validations": [
        {"rule": "size(self.metadata.name) <= 20", "message": "name must be at most 20 characters"}
    ],
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas must not exceed maxReplicas",
                    "fieldPath": ".minReplicas",
                },
                {
                    "rule": "!has(self.mode) || self.mode != 'legacy' || has(self.legacyConfig)",
                    "message": "legacy mode needs legacyConfig",
                    "reason": "FieldValueForbidden",
                },
            ],
            "properties": {
                "minReplicas": {"type": "integer", "default": 1},
                "maxReplicas": {"type": "integer", "default": 3},
                "storageClass": {
                    "type": "string",
                    "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "storageClass is immutable"}],
                },
                "mode": {"type": "string"},
                "legacyConfig": {"type": "string"},
                "tags": {
                    "type": "array",
                    "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('t-')"}]},
                },
                "nickname": {
                    "type": "string",
                    "x-kubernetes-validations": [
                        {
                            "rule": "self.lowerAscii() == self",
                            "messageExpression": "'nickname ' + self + ' must be lower case'",
                        }
                    ],
                },
                "threshold": {"type": "integer"},
                "limits": {
                    "type": "object",
                    "x-kubernetes-validations": [{"rule": "self.threshold < 100", "message": "threshold too high"}],
                    "properties": {"threshold": {"type": "integer"}, "other": {"type": "integer"}},
                },
            },
        }
    },
}


def gadget_crd(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "gadget", "kind": KIND},
            "versions": [
                {"name": VERSION, "served": True, "storage": True, "schema": {"openAPIV3Schema": schema or SCHEMA}}
            ],
        },
    }


def gadget(name: str = "g", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name}, "spec": spec}


def with_rule(path: tuple[str, ...], rule: dict[str, Any]) -> dict[str, Any]:
    """SCHEMA with one more rule on the node at `path` (a chain of property names)."""
    schema = copy.deepcopy(SCHEMA)
    node = schema
    for name in path:
        node = node["properties"][name]
    node.setdefault("x-kubernetes-validations", []).append(rule)
    return schema


@pytest.fixture
def extensions(kube: client.ApiClient) -> client.ApiextensionsV1Api:
    return client.ApiextensionsV1Api(kube)


@pytest.fixture
def gadgets(extensions: client.ApiextensionsV1Api) -> None:
    extensions.create_custom_resource_definition(gadget_crd())


def create(custom: client.CustomObjectsApi, body: dict[str, Any]) -> dict[str, Any]:
    return dict(custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body))


def patch(custom: client.CustomObjectsApi, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name, body))


def refused(call: Any, *args: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        call(*args)
    assert caught.value.status == 422
    status: dict[str, Any] = json.loads(caught.value.body)
    assert status["reason"] == "Invalid"
    return status


# -- root, nested and list-item rules ----------------------------------------------------------------------
def test_root_rule_can_read_the_name(custom: client.CustomObjectsApi, gadgets: None) -> None:
    name = "g" * 21
    status = refused(create, custom, gadget(name))
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "object": name must be at most 20 characters',
            "field": "<nil>",
        }
    ]
    assert status["message"] == (
        f'{KIND}.{GROUP} "{name}" is invalid: <nil>: Invalid value: "object": name must be at most 20 characters'
    )


def test_root_rule_boundary_is_accepted(custom: client.CustomObjectsApi, gadgets: None) -> None:
    assert create(custom, gadget("g" * 20))["metadata"]["name"] == "g" * 20


def test_nested_rule_reports_its_field_path(custom: client.CustomObjectsApi, gadgets: None) -> None:
    status = refused(create, custom, gadget(minReplicas=5, maxReplicas=2))
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "object": minReplicas must not exceed maxReplicas',
            "field": "spec.minReplicas",
        }
    ]


def test_rules_see_defaulted_values(custom: client.CustomObjectsApi, gadgets: None) -> None:
    assert create(custom, gadget(minReplicas=3))["spec"]["maxReplicas"] == 3  # 3 <= the default 3
    refused(create, custom, gadget("h", minReplicas=4))


def test_has_rule_with_a_forbidden_reason(custom: client.CustomObjectsApi, gadgets: None) -> None:
    status = refused(create, custom, gadget(mode="legacy"))
    assert status["details"]["causes"] == [
        {"reason": "FieldValueForbidden", "message": "Forbidden: legacy mode needs legacyConfig", "field": "spec"}
    ]
    assert create(custom, gadget(mode="legacy", legacyConfig="x"))["spec"]["mode"] == "legacy"


def test_rule_on_list_items_names_the_item_and_defaults_its_message(
    custom: client.CustomObjectsApi, gadgets: None
) -> None:
    status = refused(create, custom, gadget(tags=["t-ok", "bad"]))
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: \"string\": failed rule: self.startsWith('t-')",
            "field": "spec.tags[1]",
        }
    ]


def test_message_expression_builds_the_message(custom: client.CustomObjectsApi, gadgets: None) -> None:
    status = refused(create, custom, gadget(nickname="Bob"))
    assert status["details"]["causes"][0]["message"] == 'Invalid value: "string": nickname Bob must be lower case'
    assert create(custom, gadget(nickname="bob"))["spec"]["nickname"] == "bob"


def test_evaluation_error_is_reported_like_cel_go(custom: client.CustomObjectsApi, gadgets: None) -> None:
    status = refused(create, custom, gadget(limits={"other": 1}))
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "object": no such key: threshold evaluating rule: threshold too high',
            "field": "spec.limits",
        }
    ]


def test_schema_errors_skip_the_rules(custom: client.CustomObjectsApi, gadgets: None) -> None:
    status = refused(create, custom, gadget(minReplicas="many", maxReplicas=0))
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.minReplicas", "<nil>"]
    assert status["details"]["causes"][1]["message"] == (
        "Invalid value: null: some validation rules were not checked because the object was invalid; "
        "correct the existing errors to complete validation"
    )


# -- transition rules and ratcheting -----------------------------------------------------------------------
def test_transition_rule_makes_a_field_immutable(custom: client.CustomObjectsApi, gadgets: None) -> None:
    create(custom, gadget(storageClass="fast"))
    status = refused(patch, custom, "g", {"spec": {"storageClass": "slow"}})
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "string": storageClass is immutable',
            "field": "spec.storageClass",
        }
    ]
    assert patch(custom, "g", {"spec": {"mode": "new"}})["spec"]["storageClass"] == "fast"


def test_transition_rule_does_not_run_without_an_old_value(custom: client.CustomObjectsApi, gadgets: None) -> None:
    create(custom, gadget())
    assert patch(custom, "g", {"spec": {"storageClass": "fast"}})["spec"]["storageClass"] == "fast"


def test_unchanged_values_are_ratcheted(custom: client.CustomObjectsApi, extensions: client.ApiextensionsV1Api) -> None:
    """A rule added to the CRD later refuses no update that leaves the offending value alone."""
    extensions.create_custom_resource_definition(gadget_crd())
    create(custom, gadget(mode="old"))
    stricter = gadget_crd(with_rule(("spec", "mode"), {"rule": "self.startsWith('new')"}))
    custom.replace_cluster_custom_object(
        "apiextensions.k8s.io", "v1", "customresourcedefinitions", stricter["metadata"]["name"], stricter
    )
    assert patch(custom, "g", {"spec": {"minReplicas": 2}})["spec"]["minReplicas"] == 2
    status = refused(patch, custom, "g", {"spec": {"mode": "older"}})
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.mode"]


# -- the CRD itself ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "field", "reason", "message"),
    [
        ({"rule": "self.x >"}, ".rule", "FieldValueInvalid", "compilation failed: ERROR: <input>:1:8"),
        ({"rule": " "}, ".rule", "FieldValueRequired", "Required value: rule is not specified"),
        ({"rule": "true", "reason": "FieldValueBogus"}, ".reason", "FieldValueNotSupported", 'Unsupported value: "Fi'),
        ({"rule": "true", "fieldPath": ".nope"}, ".fieldPath", "FieldValueInvalid", "fieldPath must be a valid path"),
        ({"rule": "true", "message": "two\nlines"}, ".message", "FieldValueInvalid", "must not contain line breaks"),
    ],
)
def test_crd_with_a_broken_rule_is_refused(
    extensions: client.ApiextensionsV1Api, rule: dict[str, Any], field: str, reason: str, message: str
) -> None:
    status = refused(extensions.create_custom_resource_definition, gadget_crd(with_rule(("spec",), rule)))
    cause = status["details"]["causes"][0]
    assert cause["field"] == f"{ROOT}.properties[spec].x-kubernetes-validations[2]{field}"
    assert cause["reason"] == reason and message in cause["message"]


def test_transition_rule_under_an_atomic_list_is_refused(extensions: client.ApiextensionsV1Api) -> None:
    schema = copy.deepcopy(SCHEMA)
    schema["properties"]["spec"]["properties"]["tags"]["items"]["x-kubernetes-validations"] = [
        {"rule": "self == oldSelf"}
    ]
    status = refused(extensions.create_custom_resource_definition, gadget_crd(schema))
    assert status["details"]["causes"][0]["message"] == (
        'Invalid value: "self == oldSelf": oldSelf cannot be used on the uncorrelatable portion of the schema '
        f"within {ROOT}.properties[spec].properties[tags]"
    )


def test_rule_using_an_unsupported_function_is_accepted_and_reported(
    custom: client.CustomObjectsApi, extensions: client.ApiextensionsV1Api, caplog: pytest.LogCaptureFixture
) -> None:
    schema = with_rule(("spec", "mode"), {"rule": "isURL(self)", "message": "mode must be a URL"})
    with caplog.at_level(logging.WARNING, logger="memory_sandbox.apiserver.cel"):
        extensions.create_custom_resource_definition(gadget_crd(schema))
    assert any("isURL()" in r.getMessage() and "not enforced" in r.getMessage() for r in caplog.records)
    assert create(custom, gadget(mode="not a url"))["spec"]["mode"] == "not a url"
    refused(create, custom, gadget("h", minReplicas=9))  # the CRD's other rules still hold


# -- kubectl -----------------------------------------------------------------------------------------------
def apply(kubectl: Kubectl, body: dict[str, Any], *, check: bool = True) -> Any:
    return kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(body), check=check)


def test_kubectl_apply_shows_the_rule_message(kubectl: Kubectl) -> None:
    apply(kubectl, gadget_crd())
    result = apply(kubectl, gadget(minReplicas=5, maxReplicas=2), check=False)
    assert result.returncode != 0
    assert 'spec.minReplicas: Invalid value: "object": minReplicas must not exceed maxReplicas' in result.stderr
    assert "created" in apply(kubectl, gadget(minReplicas=2, maxReplicas=5)).stdout


def test_kubectl_apply_cannot_change_an_immutable_field(kubectl: Kubectl) -> None:
    apply(kubectl, gadget_crd())
    apply(kubectl, gadget(storageClass="fast"))
    result = apply(kubectl, gadget(storageClass="slow"), check=False)
    assert result.returncode != 0
    assert 'spec.storageClass: Invalid value: "string": storageClass is immutable' in result.stderr
    assert "configured" in apply(kubectl, gadget(storageClass="fast", mode="m")).stdout


def test_kubectl_prints_the_warning_for_an_unsupported_rule(kubectl: Kubectl) -> None:
    result = apply(kubectl, gadget_crd(with_rule(("spec", "mode"), {"rule": "self.url().getHost() != ''"})))
    assert "Warning:" in result.stderr and "url()" in result.stderr and "not enforced" in result.stderr
