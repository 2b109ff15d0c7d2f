"""The CRDs' CEL rules (x-kubernetes-validations) run with a real CEL evaluator, next to the operator's own checks.

The rules are read from the generated crds/, so what is tested is what `kubectl apply` installs. Each hostile
spec is refused by the rule (with the field the API server would name) and by the pydantic model the operator
parses with, so an object stored before the rule existed still ends as InvalidSpec naming the same field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from memory_operator.api.v1alpha1 import GROUP, VERSION, CompliancePolicy, MemoryStore, MemoryTenant
from memory_operator.api.v1alpha1.memorytenant import CRONJOB_NAME_LIMIT, MAX_TENANT_NAME
from memory_operator.builders.cronjobs import JOBS, cronjob_name, report_configmap_name
from memory_operator.builders.meta import credentials_secret_name, keys_secret_name
from memory_operator.errors import describe_validation_error
from memory_sandbox.apiserver import cel
from memory_sandbox.apiserver.schema import apply_schema

CRDS = Path(__file__).resolve().parents[2] / "crds"


def schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / f"{GROUP}_{plural}.yaml").read_text())
    result: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return result


def obj(kind: str, name: str = "support", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}


def refusals(plural: str, new: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in cel.validate(new, old, schema(plural)).causes]


def model_error(model: Any, body: dict[str, Any]) -> str:
    body = {**body, "metadata": {**body["metadata"], "namespace": "team-a", "uid": "u", "generation": 1}}
    with pytest.raises(ValidationError) as caught:
        model.from_body(body)
    return describe_validation_error(caught.value)


STORE = {
    "url": "rediss://valkey.memory-system.svc:6380",
    "adminSecretRef": {"name": "admin", "namespace": "memory-system"},
}


# -- MemoryTenant ----------------------------------------------------------------------------------------
def test_a_tenant_name_up_to_the_limit_is_accepted_and_one_more_character_is_refused() -> None:
    assert refusals("memorytenants", obj("MemoryTenant", "t" * MAX_TENANT_NAME)) == []
    [(field, message)] = refusals("memorytenants", obj("MemoryTenant", "t" * (MAX_TENANT_NAME + 1)))
    assert field == "<nil>"
    assert message.startswith(f'Invalid value: "object": metadata.name: must be no more than {MAX_TENANT_NAME}')


def test_agents_with_minimal_isolation_are_refused_at_the_agents_field() -> None:
    body = obj("MemoryTenant", isolation="minimal", agents=["planner"])
    [(field, message)] = refusals("memorytenants", body)
    assert field == "spec.agents"
    assert "must be empty with isolation minimal" in message
    assert model_error(MemoryTenant, body).startswith("spec.agents: ")
    for fine in (obj("MemoryTenant", isolation="minimal"), obj("MemoryTenant", isolation="strict", agents=["a"])):
        assert refusals("memorytenants", fine) == []


@pytest.mark.parametrize(
    ("old_ref", "new_ref", "refused"),
    [
        (None, {"name": "b"}, False),  # choosing a store the first time
        ({"name": "a"}, {"name": "a"}, False),
        ({"name": "a"}, {"name": "b"}, True),  # moving: data is not migrated
        ({"name": "a"}, None, True),  # dropping it would let placement pick another store
    ],
)
def test_store_ref_cannot_change_once_set(
    old_ref: dict[str, str] | None, new_ref: dict[str, str] | None, refused: bool
) -> None:
    old = obj("MemoryTenant", **({"storeRef": old_ref} if old_ref else {}))
    new = obj("MemoryTenant", **({"storeRef": new_ref} if new_ref else {}))
    causes = refusals("memorytenants", new, old)
    assert [field for field, _ in causes] == (["spec.storeRef"] if refused else [])
    assert refusals("memorytenants", new) == []  # a create has no oldSelf: the transition rule does not run


@pytest.mark.parametrize("agent", ["a", "a" * 63])
def test_every_child_name_of_the_longest_tenant_fits_its_kind(agent: str) -> None:
    tenant = "t" * MAX_TENANT_NAME
    for job in JOBS:
        assert len(cronjob_name(tenant, job)) <= CRONJOB_NAME_LIMIT
    assert len(report_configmap_name(tenant)) <= 253
    for secret in (credentials_secret_name(tenant), keys_secret_name(tenant), credentials_secret_name(tenant, agent)):
        assert len(secret) <= 253
    assert len(tenant) <= 63  # the tenant label's value


# -- MemoryStore -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis://valkey:99999", "port"),
        ("redis://valkey:0", "port"),
        ("redis://" + "h" * 64 + ".example:6379", "63"),
        ("redis://user:pw@valkey:6379", "credentials"),
        ("redis://valkey:6379/3", "database"),
    ],
)
def test_a_store_url_the_operator_cannot_use_is_refused_by_the_schema_and_the_model(url: str, why: str) -> None:
    body = obj("MemoryStore", "s", **{**STORE, "url": url})
    pattern_refusals = apply_schema(body, schema("memorystores")).causes  # the OpenAPI pattern, as the server
    assert any(cause["field"] == "spec.url" for cause in pattern_refusals), pattern_refusals
    message = model_error(MemoryStore, body)
    assert message.startswith("spec.url: ") and why in message, message


def test_tls_on_a_plain_redis_url_is_refused() -> None:
    body = obj("MemoryStore", "s", **{**STORE, "url": "redis://valkey:6379", "tls": {}})
    [(field, message)] = refusals("memorystores", body)
    assert field == "spec.tls"
    assert "rediss://" in message
    assert model_error(MemoryStore, body).startswith("spec.tls: ")
    assert refusals("memorystores", obj("MemoryStore", "s", **{**STORE, "tls": {}})) == []


# -- CompliancePolicy ------------------------------------------------------------------------------------
def test_a_minimum_retention_above_the_maximum_is_refused() -> None:
    bad = obj("CompliancePolicy", overrides={"messageRetentionDays": 30, "messageMinRetentionDays": 90})
    [(field, message)] = refusals("compliancepolicies", bad)
    assert field == "spec.overrides.messageMinRetentionDays"
    assert "must not exceed messageRetentionDays" in message
    for fine in ({"messageRetentionDays": 90, "messageMinRetentionDays": 90}, {"messageMinRetentionDays": 900}):
        assert refusals("compliancepolicies", obj("CompliancePolicy", overrides=fine)) == []
    CompliancePolicy.from_body(
        {**bad, "metadata": {"name": "p", "uid": "u", "generation": 1}}
    )  # parsed: the operator refuses it as a contradiction, with every policy's values in view (test_policy)


@pytest.mark.parametrize(
    ("old_mode", "new_mode", "refused"),
    [("Standalone", "Standalone", False), ("Cluster", "Cluster", False), ("Standalone", "Cluster", True)],
)
def test_a_stores_mode_cannot_change_once_set(old_mode: str, new_mode: str, refused: bool) -> None:
    """Tenants' keys are laid out for the mode (one hash tag on a cluster): switching would strand them."""
    old, new = obj("MemoryStore", **STORE, mode=old_mode), obj("MemoryStore", **STORE, mode=new_mode)
    assert [field for field, _ in refusals("memorystores", new, old)] == (["spec.mode"] if refused else [])
    assert refusals("memorystores", new) == []
