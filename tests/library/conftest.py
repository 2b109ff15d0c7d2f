"""Library fixtures: tenants provisioned with the operator's own code, and the env an agent's Secret gives it.

`Provisioner.tenant(...)` plans the ACL users with `plan_acl_users`, creates them with `RedisAdmin.set_user`
(exactly what the operator's reconciler does) and returns the Secret-shaped env per user, so every test talks
to the server as a real agent would, through ACLs that are really enforced.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest

from memory_client import AgentMemory
from memory_jobs.env import JobEnv
from memory_operator.builders.acl import agent_prefix, audit_key, plan_acl_users, shared_prefix, tenant_prefix
from memory_operator.clients.redis_admin import RedisAdmin
from memory_sandbox.engine import Engine

_ids = itertools.count()


def keyring_json(key_id: str = "k1", *, pseudonym: bool = True) -> str:
    """A keyring in the operator's wire format with one fresh random key (and a pseudonym key, as minted now)."""
    key = {
        "id": key_id,
        "algorithm": "AES-256-GCM",
        "key": base64.b64encode(os.urandom(32)).decode(),
        "createdAt": "2026-01-01T00:00:00Z",
    }
    doc: dict[str, object] = {"version": 1, "active": key_id, "keys": [key]}
    if pseudonym:
        doc["pseudonym"] = base64.b64encode(os.urandom(32)).decode()
    return json.dumps(doc)


@dataclass
class Tenant:
    """One provisioned tenant: the env of each of its users (None: the tenant user) and its keyring."""

    namespace: str
    name: str
    isolation: str
    agents: tuple[str, ...]
    keyring: str
    envs: dict[str | None, dict[str, str]] = field(default_factory=dict)
    clients: list[AgentMemory] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return tenant_prefix(self.namespace, self.name)

    @property
    def audit_key(self) -> str:
        return audit_key(self.namespace, self.name)

    def env(self, agent: str | None = None, **overrides: str) -> dict[str, str]:
        """The credentials Secret of `agent` (or the tenant's) merged with the keys Secret, as envFrom gives it."""
        return {**self.envs[agent], "MEMORY_KEYRING": self.keyring, **overrides}

    def job_env(self, redis_url: str, retention_days: int = 7) -> JobEnv:
        """What the tenant's jobs read from their Secret (here with the store's admin URL, as the tests run them)."""
        return JobEnv(
            redis_url=redis_url,
            tenant_id=f"{self.namespace}/{self.name}",
            key_prefix=self.prefix,
            shared_prefix=f"{self.prefix}shared:",
            retention_days=retention_days,
            encryption_required=True,
            results_prefix=f"jobs:{self.namespace}:{self.name}:",
        )

    def memory(self, agent: str | None = None, audit: bool = True, **overrides: str) -> AgentMemory:
        client = AgentMemory.from_env(self.env(agent, **overrides), audit=audit)
        self.clients.append(client)
        return client


@dataclass
class Provisioner:
    engine: Engine
    admin: RedisAdmin
    tenants: list[Tenant] = field(default_factory=list)

    def tenant(self, isolation: str = "moderate", agents: tuple[str, ...] = ("alpha", "beta"), **policy: str) -> Tenant:
        namespace, name = f"lib{next(_ids)}", "bot"
        caps = self.admin.capabilities()
        tenant = Tenant(namespace, name, isolation, agents, keyring_json())
        for user in plan_acl_users(namespace, name, isolation, agents):
            password = secrets.token_urlsafe(24)
            self.admin.set_user(user, password, caps)
            env = {
                "REDIS_URL": f"redis://{quote(user.name)}:{quote(password)}@{self.engine.host}:{self.engine.port}/0",
                "REDIS_USERNAME": user.name,
                "REDIS_PASSWORD": password,
                "MEMORY_TENANT_ID": f"{namespace}/{name}",
                "MEMORY_KEY_PREFIX": tenant_prefix(namespace, name),
                "MEMORY_ISOLATION": isolation,
                "MEMORY_ENCRYPTION": "required",
                "MEMORY_KEYS_SECRET": f"{name}-memory-keys",
                "MEMORY_AUDIT_KEY": audit_key(namespace, name),
                **policy,
            }
            if user.agent is not None:
                env["MEMORY_AGENT_ID"] = user.agent
                if isolation == "strict":
                    env["MEMORY_AGENT_PREFIX"] = agent_prefix(namespace, name, user.agent)
                    env["MEMORY_SHARED_PREFIX"] = shared_prefix(namespace, name)
            tenant.envs[user.agent] = env
        self.tenants.append(tenant)
        return tenant

    def repair(self, tenant: Tenant) -> None:
        """Restore the tenant's users with the passwords already in their Secrets, as drift repair does."""
        caps = self.admin.capabilities()
        for user in plan_acl_users(tenant.namespace, tenant.name, tenant.isolation, tenant.agents):
            self.admin.set_user(user, tenant.envs[user.agent]["REDIS_PASSWORD"], caps)

    def cleanup(self) -> None:
        for tenant in self.tenants:
            for client in tenant.clients:
                client.close()
            self.admin.delete_users(env["REDIS_USERNAME"] for env in tenant.envs.values())
            self.admin.scan_delete(tenant.prefix)
            self.admin.scan_delete(tenant.audit_key)


@pytest.fixture(scope="session")
def session_admin(engine: Engine) -> Iterator[RedisAdmin]:
    with RedisAdmin(engine.url, username=engine.admin_username, password=engine.admin_password) as admin:
        yield admin


@pytest.fixture
def provision(engine: Engine, session_admin: RedisAdmin) -> Iterator[Provisioner]:
    provisioner = Provisioner(engine, session_admin)
    yield provisioner
    provisioner.cleanup()


@pytest.fixture
def tenant(provision: Provisioner) -> Tenant:
    """A moderate tenant with agents alpha and beta, encryption required, no masking."""
    return provision.tenant()
