"""Pure builders of the Secrets a tenant gets: credentials (per ACL user) and the keyring."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from memory_client.contract import Env
from memory_operator.api.v1alpha1 import MemoryTenant, Requirements
from memory_operator.builders.keyring import KEYRING_KEY, Keyring
from memory_operator.builders.meta import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    ROLE_LABEL,
    credentials_secret_name,
    job_credentials_secret_name,
    keys_secret_name,
    owner_reference,
    tenant_labels,
)
from memory_operator.policy import encryption_in_force

__all__ = [
    "SEAL_KEY",
    "SEAL_SECRET",
    "Credentials",
    "Endpoint",
    "credentials_secret",
    "job_credentials_secret",
    "keys_secret",
    "seal_secret",
    "secret_value",
]

ROLE_CREDENTIALS = "credentials"
ROLE_JOB_CREDENTIALS = "job-credentials"
ROLE_KEYS = "keys"
ROLE_SEAL = "seal-key"
#: the operator's own Secret (in its namespace) holding the HMAC key of audit seals; no tenant can read it
SEAL_SECRET = "agent-memory-seal"  # noqa: S105 - a Secret's name, not a password
SEAL_KEY = "SEAL_KEY"


@dataclass(frozen=True)
class Endpoint:
    """Where agents connect: a MemoryStore's URL, split."""

    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("must look like redis://host:port or rediss://host:port")
        return cls(host=parts.hostname, port=parts.port or 6379, tls=parts.scheme == "rediss")

    def url(self, username: str, password: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{quote(username, safe='')}:{quote(password, safe='')}@{host}:{self.port}/0"


@dataclass(frozen=True)
class Credentials:
    """One ACL user's login and the key areas it may use."""

    username: str
    password: str
    agent: str | None
    key_prefix: str
    audit_key: str
    agent_prefix: str | None = None
    shared_prefix: str | None = None
    seal_key: str | None = None  # the job user's: where the operator's seal is, and where results go
    results_prefix: str | None = None
    cluster_nodes: tuple[str, ...] = ()  # a cluster store's nodes (host:port), for MEMORY_CLUSTER_NODES


def _encode(data: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())}


def secret_value(secret: dict[str, Any], key: str) -> str | None:
    """Decode one key of a Secret as the API returns it (`data`, base64)."""
    raw = (secret.get("data") or {}).get(key)
    return None if raw is None else base64.b64decode(raw).decode()


def _secret(tenant: MemoryTenant, name: str, role: str, agent: str | None, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": tenant.namespace,
            "labels": tenant_labels(tenant, role, agent),
            "ownerReferences": [owner_reference(tenant)],
        },
        "data": _encode(data),
    }


def _days(value: int | None) -> str | None:
    return None if value is None else str(value)


def credentials_secret(
    tenant: MemoryTenant, creds: Credentials, endpoint: Endpoint, policy: Requirements
) -> dict[str, Any]:
    """Everything an agent needs through `envFrom`: the URL (with the ACL user), its parts, the key layout,
    and the effective policy the agent library enforces client-side (masking, encryption, audit, retention)."""
    data = {
        Env.REDIS_URL: endpoint.url(creds.username, creds.password),
        Env.REDIS_HOST: endpoint.host,
        Env.REDIS_PORT: str(endpoint.port),
        Env.REDIS_TLS: "true" if endpoint.tls else "false",
        Env.REDIS_USERNAME: creds.username,
        Env.REDIS_PASSWORD: creds.password,
        Env.TENANT_ID: f"{tenant.namespace}/{tenant.name}",
        Env.KEY_PREFIX: creds.key_prefix,
        Env.ISOLATION: tenant.spec.isolation,
        Env.ENCRYPTION: Env.ENCRYPTION_REQUIRED if encryption_in_force(tenant, policy) else Env.ENCRYPTION_DISABLED,
        Env.KEYS_SECRET: keys_secret_name(tenant.name),
        Env.AUDIT_KEY: creds.audit_key,
        Env.ACCESS_LOGGING: "true" if policy.access_logging else "false",
        Env.MASKING: ",".join(policy.masking.detectors),
        Env.MASKING_MODE: policy.masking.mode,
        Env.FRAMEWORKS: ",".join(policy.frameworks),
    }
    optional = {
        Env.AGENT_ID: creds.agent,
        Env.AGENT_PREFIX: creds.agent_prefix,
        Env.SHARED_PREFIX: creds.shared_prefix,
        Env.SEAL_KEY: creds.seal_key,
        Env.RESULTS_PREFIX: creds.results_prefix,
        Env.CLUSTER_NODES: ",".join(creds.cluster_nodes) or None,
        Env.RETENTION_DAYS: _days(policy.message_retention_days),
        Env.AUDIT_RETENTION_DAYS: _days(policy.audit_retention_days),
    }
    if tenant.spec.quota is not None:
        optional[Env.QUOTA_KEYS] = None if tenant.spec.quota.keys is None else str(tenant.spec.quota.keys)
        memory = tenant.spec.quota.memory_bytes
        optional[Env.QUOTA_BYTES] = None if memory is None else str(memory)
    data.update({k: v for k, v in optional.items() if v is not None})
    if creds.results_prefix is not None:
        return _secret(tenant, job_credentials_secret_name(tenant.name), ROLE_JOB_CREDENTIALS, None, data)
    name = credentials_secret_name(tenant.name, creds.agent)
    return _secret(tenant, name, ROLE_CREDENTIALS, creds.agent, data)


def job_credentials_secret(
    tenant: MemoryTenant, creds: Credentials, endpoint: Endpoint, policy: Requirements
) -> dict[str, Any]:
    """What the tenant's CronJobs run with: the jobs' own ACL user, the policy, the seal and the results area."""
    if creds.results_prefix is None or creds.seal_key is None:
        raise ValueError("job credentials name the seal key and the results prefix")
    return credentials_secret(tenant, creds, endpoint, policy)


def seal_secret(namespace: str, key: bytes) -> dict[str, Any]:
    """The HMAC key of audit seals, in the operator's namespace; created once, never rewritten."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": SEAL_SECRET,
            "namespace": namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                "app.kubernetes.io/part-of": "agent-memory",
                ROLE_LABEL: ROLE_SEAL,
            },
        },
        "data": _encode({SEAL_KEY: base64.b64encode(key).decode()}),  # the value is the key in base64
    }


def keys_secret(tenant: MemoryTenant, keyring: Keyring) -> dict[str, Any]:
    """The keyring, apart from credentials so RBAC can grant 'connect' without 'decrypt'."""
    return _secret(tenant, keys_secret_name(tenant.name), ROLE_KEYS, None, {KEYRING_KEY: keyring.to_json()})
