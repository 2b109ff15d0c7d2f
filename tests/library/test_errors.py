"""Typed errors: permission denied on another tenant's or agent's keys, connection loss; never a secret inside."""

from __future__ import annotations

import pytest
import redis

from memory_client import AgentMemory, ConfigError, MemoryConfig, MemoryConnectionError, MemoryPermissionError
from memory_operator.clients.redis_admin import RedisAdmin
from memory_sandbox.engine import Engine

from .conftest import Provisioner, Tenant


def test_using_another_tenants_prefix_is_a_permission_error_without_the_password(provision: Provisioner) -> None:
    mine, theirs = provision.tenant(), provision.tenant()
    env = mine.env("alpha", MEMORY_KEY_PREFIX=theirs.prefix, MEMORY_TENANT_ID=f"{theirs.namespace}/bot")
    memory = AgentMemory.from_env(env)
    try:
        with pytest.raises(MemoryPermissionError) as caught:
            memory.conversation("c", "u1").append("human", "x")
        assert mine.env("alpha")["REDIS_PASSWORD"] not in str(caught.value)
        assert "mt_" in str(caught.value)  # names the user, so the operator's logs can be correlated
    finally:
        memory.close()


def test_another_tenants_audit_stream_is_refused(provision: Provisioner) -> None:
    mine, theirs = provision.tenant(), provision.tenant()
    memory = mine.memory("alpha", MEMORY_AUDIT_KEY=theirs.audit_key)
    with pytest.raises(MemoryPermissionError):
        memory.conversation("c", "u1").append("human", "x")
    assert memory.conversation("c", "u1").count() == 0  # the data write went down with the audit write


def test_a_strict_agent_cannot_read_another_agents_conversation(provision: Provisioner) -> None:
    strict = provision.tenant("strict")
    strict.memory("alpha").conversation("c", "u1").append("human", "private")
    with pytest.raises(MemoryPermissionError):
        strict.memory("beta").conversation("c", "u1", agent="alpha").last(1)


def test_a_stopped_server_is_a_connection_error_without_the_password(fresh_engine: Engine) -> None:
    admin = RedisAdmin(fresh_engine.url, username=fresh_engine.admin_username, password=fresh_engine.admin_password)
    with admin:
        tenant: Tenant = Provisioner(fresh_engine, admin).tenant()
        memory = tenant.memory("alpha", audit=True)
        memory.conversation("c", "u1").append("human", "x")
        fresh_engine.stop()
        with pytest.raises(MemoryConnectionError) as caught:
            memory.conversation("c", "u1").append("human", "y")
        assert tenant.env("alpha")["REDIS_PASSWORD"] not in str(caught.value)
        memory.close()


def test_the_same_client_works_again_after_a_server_restart(fresh_engine: Engine) -> None:
    admin = RedisAdmin(fresh_engine.url, username=fresh_engine.admin_username, password=fresh_engine.admin_password)
    with admin:
        provisioner = Provisioner(fresh_engine, admin)
        tenant = provisioner.tenant()
        memory = tenant.memory("alpha")
        chat = memory.conversation("c", "u1")
        chat.append("human", "lost with the restart")
        fresh_engine.stop()
        fresh_engine.start()  # no persistence: data and users are gone
        provisioner.repair(tenant)
        assert chat.messages() == []  # reads retry once on a fresh connection
        # The append goes out on the connection kept watching the audit head, which died with the server; the
        # audit trail proves it was not applied, so it is run again.
        chat.append("human", "after")
        assert [m.content for m in chat.messages()] == ["after"] and memory.verify_audit().ok


def test_a_resp3_url_is_refused_at_construction_naming_the_setting(tenant: Tenant) -> None:
    """RESP3 replies have other shapes (maps, not flat lists): agent_report() failed with KeyError: 0 on them."""
    url = tenant.env("alpha")["REDIS_URL"] + "?protocol=3"  # in redis-py the URL's options win over arguments
    with pytest.raises(ConfigError, match=r"REDIS_URL speaks RESP3 \(protocol=3\)"):
        AgentMemory.from_env(tenant.env("alpha", REDIS_URL=url))


def test_a_resp3_client_is_refused_at_construction_naming_the_setting(tenant: Tenant) -> None:
    config = MemoryConfig.from_env(tenant.env("alpha"))
    client = redis.Redis.from_url(config.redis_url, protocol=3)
    try:
        with pytest.raises(ConfigError, match=r"client= speaks RESP3 \(protocol=3\)"):
            AgentMemory(config, client=client)
    finally:
        client.close()


def test_a_resp2_client_given_is_used(tenant: Tenant) -> None:
    config = MemoryConfig.from_env(tenant.env("alpha"))
    with AgentMemory(config, client=redis.Redis.from_url(config.redis_url, protocol=2)) as memory:
        memory.conversation("c", "u1").append("human", "hello")
        assert [a.agent for a in memory.agent_report()] == ["alpha"]


class _Wrapped:
    """A client that wraps redis-py's (as tracing or retry wrappers do): every call delegated, no socket of its own."""

    def __init__(self, inner: redis.Redis) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_a_wrapped_client_is_refused_at_construction(tenant: Tenant) -> None:
    config = MemoryConfig.from_env(tenant.env("alpha"))
    inner = redis.Redis.from_url(config.redis_url)
    try:
        with pytest.raises(ConfigError, match=r"must be a sync redis\.Redis client, got _Wrapped"):
            AgentMemory(config, client=_Wrapped(inner))  # type: ignore[arg-type]
    finally:
        inner.close()


class _ProxyConnection:
    """A connection class that is not one of redis-py's socket connections (a proxy around one)."""


def test_a_client_whose_connections_are_not_sockets_is_refused_at_construction(tenant: Tenant) -> None:
    config = MemoryConfig.from_env(tenant.env("alpha"))
    client = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=_ProxyConnection))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="connections of class _ProxyConnection"):
        AgentMemory(config, client=client)
