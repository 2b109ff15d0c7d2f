"""Pure builders of the tenant's Secrets: names, contract keys, ownership, keyring format."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from memory_operator.api.v1alpha1 import MemoryTenant, Requirements
from memory_operator.api.v1alpha1.compliancepolicy import Masking
from memory_operator.builders.keyring import Keyring, KeyringError, KeyringKey
from memory_operator.builders.secrets import Credentials, Endpoint, credentials_secret, keys_secret, secret_value

PASSWORD = "p@ss:w/rd?#%"
NO_POLICY = Requirements()  # every URL-reserved character an ACL password might contain


def tenant(**spec: Any) -> MemoryTenant:
    meta = {"name": "support", "namespace": "team-a", "uid": "uid-1", "generation": 1}
    return MemoryTenant.from_body({"metadata": meta, "spec": spec})


def creds(agent: str | None = None) -> Credentials:
    return Credentials(
        username="mt_team-a_support",
        password=PASSWORD,
        agent=agent,
        key_prefix="mem:team-a:support:",
        audit_key="audit:team-a:support",
    )


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_credentials_secret_carries_the_contract_keys() -> None:
    secret = credentials_secret(tenant(), creds(), Endpoint.parse("redis://cache.svc:6380"), NO_POLICY)
    data = decoded(secret)
    assert {"REDIS_URL", "REDIS_USERNAME", "REDIS_PASSWORD", "MEMORY_KEY_PREFIX", "MEMORY_TENANT_ID"} <= set(data)
    assert data["MEMORY_TENANT_ID"] == "team-a/support"
    assert data["MEMORY_KEY_PREFIX"] == "mem:team-a:support:"
    assert data["MEMORY_KEYS_SECRET"] == "support-memory-keys"
    assert secret["metadata"]["name"] == "support-memory-credentials"
    assert secret_value(secret, "REDIS_PASSWORD") == PASSWORD


def test_redis_url_round_trips_through_redis_py_with_reserved_characters() -> None:
    url = decoded(credentials_secret(tenant(), creds(), Endpoint.parse("rediss://cache.svc:6380"), NO_POLICY))[
        "REDIS_URL"
    ]
    kwargs = redis.connection.parse_url(url)
    assert (kwargs["username"], kwargs["password"], kwargs["host"], kwargs["port"]) == (
        "mt_team-a_support",
        PASSWORD,
        "cache.svc",
        6380,
    )
    assert url.startswith("rediss://")


def test_agent_secret_is_named_and_labelled_for_the_agent() -> None:
    secret = credentials_secret(tenant(agents=["planner"]), creds("planner"), Endpoint.parse("redis://h:1"), NO_POLICY)
    assert secret["metadata"]["name"] == "support-planner-memory-credentials"
    assert secret["metadata"]["labels"]["agentmemory.io/agent"] == "planner"
    assert decoded(secret)["MEMORY_AGENT_ID"] == "planner"


def test_children_are_owned_by_the_tenant() -> None:
    secret = credentials_secret(tenant(), creds(), Endpoint.parse("redis://h:1"), NO_POLICY)
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "MemoryTenant",
        "support",
        "uid-1",
        True,
    )


def test_policy_facts_reach_the_agent_environment() -> None:
    t = tenant(quota={"keys": 1000, "memory": "1Mi"}, isolation="strict")
    policy = Requirements(
        message_retention_days=30,
        audit_retention_days=2555,
        access_logging=True,
        masking=Masking(detectors=["email", "iban"], mode="hash"),
    )
    data = decoded(credentials_secret(t, creds(), Endpoint.parse("redis://h:1"), policy))
    assert (data["MEMORY_RETENTION_DAYS"], data["MEMORY_AUDIT_RETENTION_DAYS"]) == ("30", "2555")
    assert (data["MEMORY_QUOTA_KEYS"], data["MEMORY_QUOTA_BYTES"]) == ("1000", "1048576")
    assert (data["MEMORY_MASKING"], data["MEMORY_MASKING_MODE"]) == ("email,iban", "hash")
    assert data["MEMORY_ACCESS_LOGGING"] == "true"
    assert data["MEMORY_AUDIT_KEY"] == "audit:team-a:support"
    assert data["MEMORY_ENCRYPTION"] == "required"


def test_policy_requiring_encryption_forces_it_on() -> None:
    t = tenant(encryption={"enabled": False})
    endpoint = Endpoint.parse("redis://h:1")
    off = decoded(credentials_secret(t, creds(), endpoint, NO_POLICY))
    forced = decoded(credentials_secret(t, creds(), endpoint, Requirements(encryption_required=True)))
    assert (off["MEMORY_ENCRYPTION"], forced["MEMORY_ENCRYPTION"]) == ("disabled", "required")


def ring() -> Keyring:
    return Keyring.first(KeyringKey(id="k1", material=bytes(range(32)), created_at=datetime(2026, 1, 1, tzinfo=UTC)))


def test_keyring_round_trips_and_lives_in_its_own_secret() -> None:
    secret = keys_secret(tenant(), ring())
    assert secret["metadata"]["name"] == "support-memory-keys"
    assert secret["metadata"]["labels"]["agentmemory.io/role"] == "keys"
    raw = secret_value(secret, "MEMORY_KEYRING")
    assert raw is not None
    assert Keyring.from_json(raw) == ring()
    assert json.loads(raw)["keys"][0]["algorithm"] == "AES-256-GCM"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"active": "k2", "keys": [{"id": "k1", "key": "AAAA", "createdAt": "2026-01-01T00:00:00Z"}]}',
        '{"active": "k1", "keys": [{"id": "k1", "key": "AAAA", "createdAt": "2026-01-01T00:00:00Z"}]}',
        '{"active": "k1"}',
    ],
)
def test_unreadable_keyring_raises_without_echoing_material(text: str) -> None:
    with pytest.raises(KeyringError) as caught:
        Keyring.from_json(text)
    assert "AAAA" not in str(caught.value)


def test_key_material_is_not_in_repr() -> None:
    assert "material" not in repr(ring().keys[0])
