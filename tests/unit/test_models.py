"""The API models: defaults, validation messages that name the field, wire round trips."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from memory_operator.api.quantity import parse_bytes
from memory_operator.api.v1alpha1 import MemoryStore, MemoryTenant
from memory_operator.errors import describe_validation_error


def tenant_body(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "support", "namespace": "team-a", "uid": "u1", "generation": 3}, "spec": spec}


def invalid_message(**spec: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        MemoryTenant.from_body(tenant_body(**spec))
    return describe_validation_error(caught.value)


def test_tenant_defaults_are_moderate_retain_encrypted() -> None:
    tenant = MemoryTenant.from_body(tenant_body())
    assert tenant.spec.isolation == "moderate"
    assert tenant.spec.deletion_policy == "Retain"
    assert tenant.spec.encryption_enabled
    assert tenant.spec.agents == []
    assert (tenant.namespace, tenant.name, tenant.metadata.generation) == ("team-a", "support", 3)


def test_strict_isolation_forces_encryption_on() -> None:
    tenant = MemoryTenant.from_body(tenant_body(isolation="strict", encryption={"enabled": False}))
    assert tenant.spec.encryption_enabled


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"isolation": "paranoid"}, "spec.isolation"),
        ({"quota": {"keys": -1}}, "spec.quota.keys"),
        ({"quota": {"memory": "12 parsecs"}}, "spec.quota.memory"),
        ({"quota": {"memory": 0}}, "spec.quota.memory"),
        ({"agents": ["Planner_1"]}, "spec.agents[0]"),
        ({"agents": ["a", "b", "a"]}, "spec.agents"),
        ({"retentionDays": 0}, "spec.retentionDays"),
        ({"deletionPolicy": "Orphan"}, "spec.deletionPolicy"),
        ({"storeRef": {"name": "Not_A_Name"}}, "spec.storeRef.name"),
        ({"isolaton": "strict"}, "spec.isolaton"),
    ],
)
def test_invalid_tenant_spec_names_the_field(spec: dict[str, Any], field: str) -> None:
    message = invalid_message(**spec)
    assert message.startswith(f"{field}: "), message


def test_duplicate_agents_are_named() -> None:
    assert "listed more than once: a" in invalid_message(agents=["a", "b", "a"])


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [(1024, 1024), ("1Ki", 1024), ("256Mi", 256 * 2**20), ("1G", 10**9), ("1.5Ki", 1536), ("0.1k", 100), ("7", 7)],
)
def test_quantities_parse_to_bytes(quantity: int | str, expected: int) -> None:
    assert parse_bytes(quantity) == expected


def test_fractional_quantity_rounds_up() -> None:
    assert parse_bytes("0.0001k") == 1


def store_body(url: str, **extra: Any) -> dict[str, Any]:
    spec = {"url": url, "adminSecretRef": {"name": "admin", "namespace": "ops"}, **extra}
    return {"metadata": {"name": "main", "annotations": {"agentmemory.io/default-store": "true"}}, "spec": spec}


@pytest.mark.parametrize("url", ["redis://10.0.0.5:6379", "rediss://cache.example.com:6380/", "redis://[::1]:7000"])
def test_store_accepts_plain_endpoints(url: str) -> None:
    store = MemoryStore.from_body(store_body(url))
    assert store.is_default
    assert store.spec.admin_secret_ref.password_key == "password"


@pytest.mark.parametrize(
    ("url", "reason"),
    [  # each carries credential text ("admin", "s3cret-pw") where a user might put it
        ("http://admin:s3cret-pw@cache:6379", "must look like redis://host:port"),
        ("redis://admin:s3cret-pw@cache:6379", "without credentials"),
        ("rediss://:s3cret-pw@cache:6380", "without credentials"),
        ("redis://cache:6379/3?username=admin&password=s3cret-pw", "must not name a database or options"),
        ("redis://admin:s3cret-pw@", "must look like redis://host:port"),
        ("admin:s3cret-pw@cache:6379", "must look like redis://host:port"),
        ("redis://cache:s3cret-pw", "the port must be a number"),
    ],
)
def test_store_rejects_urls_with_credentials_databases_or_other_schemes(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MemoryStore.from_body(store_body(url))
    message = describe_validation_error(caught.value)
    assert message.startswith("spec.url: ") and reason in message
    assert "s3cret" not in message and "admin" not in message  # the rejected value is not echoed into status


def test_status_that_cannot_be_read_starts_afresh_instead_of_failing_the_spec() -> None:
    body = tenant_body() | {"status": {"conditions": "garbage"}}
    assert MemoryTenant.from_body(body).status.conditions == []


def test_wire_round_trip_uses_camel_case() -> None:
    tenant = MemoryTenant.from_body(tenant_body(retentionDays=30, deletionPolicy="Delete", quota={"memory": "1Mi"}))
    wire = tenant.spec.to_wire()
    assert wire["retentionDays"] == 30
    assert wire["deletionPolicy"] == "Delete"
    assert MemoryTenant.from_body(tenant_body(**wire)).spec == tenant.spec
