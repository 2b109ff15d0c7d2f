"""The ACL builder: key layout, users per isolation level, SETUSER rules, capability filtering, GETUSER compare."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from memory_operator.builders.acl import (
    ALLOWED_CATEGORIES,
    ALLOWED_COMMANDS,
    AUDIT_COMMANDS,
    DENIED_CATEGORIES,
    DENIED_COMMANDS,
    AclSelector,
    AclUser,
    ServerCapabilities,
    agent_prefix,
    agent_username,
    audit_key,
    audit_selector,
    glob_escape,
    hash_password,
    plan_acl_users,
    setuser_args,
    shared_prefix,
    tenant_prefix,
    tenant_username,
)
from memory_operator.clients.redis_admin import normalize_getuser

HASH = hash_password("correct horse battery staple")
EVERY_COMMAND = frozenset(ALLOWED_COMMANDS) | frozenset(DENIED_COMMANDS) | frozenset(AUDIT_COMMANDS)
VALKEY_9 = ServerCapabilities("valkey", (9, 1, 2), EVERY_COMMAND)
VALKEY_8 = ServerCapabilities("valkey", (8, 1, 0), EVERY_COMMAND)
REDIS_7_0 = ServerCapabilities("redis", (7, 0, 15), EVERY_COMMAND - {"client|setinfo", "waitaof"})

labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
subdomains = st.lists(labels, min_size=1, max_size=3).map(".".join)
tenants = st.tuples(labels, subdomains)


def _matches(patterns: tuple[str, ...], key: str) -> bool:
    # Our patterns hold no glob character but the trailing `*`, where Redis and fnmatch agree.
    return any(fnmatchcase(key, p.removeprefix("~")) for p in patterns)


# ------------------------------------------------------------------------------------------------------------
# Key layout and names


def test_layout_of_one_tenant() -> None:
    assert tenant_prefix("team-a", "support.bot") == "mem:team-a:support.bot:"
    assert agent_prefix("team-a", "support.bot", "triage") == "mem:team-a:support.bot:agent:triage:"
    assert shared_prefix("team-a", "support.bot") == "mem:team-a:support.bot:shared:"
    assert audit_key("team-a", "support.bot") == "audit:team-a:support.bot"
    assert tenant_username("team-a", "support.bot") == "mt_team-a_support.bot"
    assert agent_username("team-a", "support.bot", "triage") == "mt_team-a_support.bot_triage"


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("Team", "x"), ("a_b", "x"), ("a:b", "x"), ("", "x"), ("-a", "x"), ("a", "b_c"), ("a", "b:c"), ("a", "B")],
)
def test_names_that_are_not_kubernetes_names_are_rejected(namespace: str, name: str) -> None:
    with pytest.raises(ValueError, match="not a valid Kubernetes name"):
        tenant_prefix(namespace, name)


def test_namespace_longer_than_a_label_is_rejected() -> None:
    with pytest.raises(ValueError):
        tenant_username("a" * 64, "x")


@pytest.mark.parametrize("agent", ["a.b", "A", "a_b", "a:b", ""])
def test_agent_must_be_a_label(agent: str) -> None:
    with pytest.raises(ValueError, match="agent"):
        plan_acl_users("ns", "t", "moderate", [agent])


def test_glob_escape_makes_metacharacters_literal() -> None:
    assert glob_escape(r"a*b?c[d]e\f") == r"a\*b\?c\[d\]e\\f"
    assert glob_escape("mem:ns:name:") == "mem:ns:name:"


@given(tenants, tenants)
def test_distinct_tenants_never_share_a_prefix_or_a_username(one: tuple[str, str], two: tuple[str, str]) -> None:
    assume(one != two)
    assert tenant_prefix(*one) != tenant_prefix(*two)
    assert tenant_username(*one) != tenant_username(*two)
    assert not tenant_prefix(*one).startswith(tenant_prefix(*two))


@given(tenants, tenants, st.sampled_from(["minimal", "moderate", "strict"]), st.lists(labels, max_size=3))
def test_no_tenant_pattern_reaches_another_tenant(
    one: tuple[str, str], two: tuple[str, str], isolation: str, agents: list[str]
) -> None:
    assume(one != two)
    for user in plan_acl_users(*one, isolation, agents):
        for key in (f"{tenant_prefix(*two)}k", f"{shared_prefix(*two)}k", audit_key(*two), audit_key(*one)):
            assert not _matches(user.key_patterns, key)
        for agent in agents:
            assert not _matches(user.key_patterns, f"{agent_prefix(*two, agent)}k")


@given(tenants, tenants, labels)
def test_agent_usernames_never_equal_a_tenant_username(one: tuple[str, str], two: tuple[str, str], agent: str) -> None:
    assert agent_username(*one, agent) != tenant_username(*two)


# ------------------------------------------------------------------------------------------------------------
# Users per isolation level


AUDIT = (AclSelector(("~audit:ns:t",), tuple(AUDIT_COMMANDS)),)


def test_minimal_gives_one_user_for_the_whole_prefix() -> None:
    assert plan_acl_users("ns", "t", "minimal", ["b", "a"]) == [AclUser("mt_ns_t", ("~mem:ns:t:*",), None, AUDIT)]


def test_moderate_gives_each_agent_its_own_user_over_the_whole_prefix() -> None:
    assert plan_acl_users("ns", "t", "moderate", ["b", "a", "b"]) == [
        AclUser("mt_ns_t", ("~mem:ns:t:*",), None, AUDIT),
        AclUser("mt_ns_t_a", ("~mem:ns:t:*",), "a", AUDIT),
        AclUser("mt_ns_t_b", ("~mem:ns:t:*",), "b", AUDIT),
    ]


def test_strict_confines_each_agent_to_its_area_and_the_shared_area() -> None:
    assert plan_acl_users("ns", "t", "strict", ["b", "a"]) == [
        AclUser("mt_ns_t", ("~mem:ns:t:*",), None, AUDIT),
        AclUser("mt_ns_t_a", ("~mem:ns:t:agent:a:*", "~mem:ns:t:shared:*"), "a", AUDIT),
        AclUser("mt_ns_t_b", ("~mem:ns:t:agent:b:*", "~mem:ns:t:shared:*"), "b", AUDIT),
    ]


# ------------------------------------------------------------------------------------------------------------
# The audit selector


def test_audit_selector_grants_append_read_and_watch_on_the_audit_key_only() -> None:
    assert audit_selector("team-a", "bot") == AclSelector(
        ("~audit:team-a:bot",), ("xadd", "xrange", "xrevrange", "xlen", "xinfo|stream", "watch")
    )


@pytest.mark.parametrize(
    "command", ["del", "unlink", "xtrim", "xdel", "expire", "pexpire", "rename", "set", "xsetid", "xgroup"]
)
def test_audit_selector_never_grants_removal_or_rewriting(command: str) -> None:
    assert command not in AUDIT_COMMANDS


@given(tenants, st.sampled_from(["minimal", "moderate", "strict"]), st.lists(labels, max_size=3))
def test_every_user_of_a_tenant_gets_its_own_tenants_audit_selector(
    tenant: tuple[str, str], isolation: str, agents: list[str]
) -> None:
    for user in plan_acl_users(*tenant, isolation, agents):
        assert user.selectors == (audit_selector(*tenant),)
        assert _matches(user.selectors[0].key_patterns, audit_key(*tenant))


def test_audit_selector_renders_after_the_root_rules() -> None:
    user = plan_acl_users("ns", "t", "minimal", [])[0]
    assert setuser_args(user, HASH, VALKEY_9)[-1] == (
        "(~audit:ns:t +xadd +xrange +xrevrange +xlen +xinfo|stream +watch)"
    )


@given(tenants, st.lists(labels, min_size=2, max_size=4, unique=True))
def test_strict_agents_never_reach_each_other_or_the_tenant_root(tenant: tuple[str, str], agents: list[str]) -> None:
    users = plan_acl_users(*tenant, "strict", agents)
    for user in users[1:]:
        assert user.agent is not None
        assert _matches(user.key_patterns, f"{agent_prefix(*tenant, user.agent)}k")
        assert _matches(user.key_patterns, f"{shared_prefix(*tenant)}k")
        assert not _matches(user.key_patterns, f"{tenant_prefix(*tenant)}k")
        for other in set(agents) - {user.agent}:
            assert not _matches(user.key_patterns, f"{agent_prefix(*tenant, other)}k")


def test_unknown_isolation_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="isolation 'paranoid'"):
        plan_acl_users("ns", "t", "paranoid", [])


# ------------------------------------------------------------------------------------------------------------
# SETUSER arguments

USER = AclUser("mt_ns_t", ("~mem:ns:t:*",))


def test_setuser_resets_then_sets_login_channels_keys_and_commands_in_that_order() -> None:
    args = setuser_args(USER, HASH)
    assert args[:5] == ["reset", "on", f"#{HASH}", "resetchannels", "~mem:ns:t:*"]
    assert args[5] == "-@all"
    grants = [a for a in args if a.startswith("+")]
    denials = [a for a in args[6:] if a.startswith("-")]
    assert args[6:] == grants + denials  # every denial after every grant: no category can re-open one
    assert grants == [f"+{c}" for c in (*ALLOWED_CATEGORIES, *ALLOWED_COMMANDS)]
    assert denials == [f"-{c}" for c in (*DENIED_CATEGORIES, *DENIED_COMMANDS)]


def test_setuser_carries_only_the_password_hash() -> None:
    password = "correct horse battery staple"
    args = setuser_args(USER, hash_password(password))
    assert not any(password in a for a in args)
    assert not any(a.startswith(">") for a in args)  # `>pw` would put the cleartext in the command


def test_setuser_rejects_a_malformed_hash_without_echoing_it() -> None:
    with pytest.raises(ValueError) as caught:
        setuser_args(USER, "hunter2")
    assert "hunter2" not in str(caught.value)


def test_hash_password_is_sha256_hex() -> None:
    assert hash_password("pw") == "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"


def test_nothing_is_both_granted_and_denied() -> None:
    assert not set(ALLOWED_COMMANDS) & set(DENIED_COMMANDS)
    assert not set(ALLOWED_CATEGORIES) & set(DENIED_CATEGORIES)


@pytest.mark.parametrize(
    "command",
    ["keys", "scan", "randomkey", "flushall", "flushdb", "swapdb", "move", "select", "copy", "restore", "sort"],
)
def test_enumerating_and_cross_database_commands_are_denied_by_name(command: str) -> None:
    assert f"-{command}" in setuser_args(USER, HASH)
    assert f"+{command}" not in setuser_args(USER, HASH)


def test_capabilities_drop_what_the_server_does_not_know() -> None:
    args = setuser_args(USER, HASH, REDIS_7_0)
    assert "+client|setinfo" not in args and "-waitaof" not in args
    assert "+client|setname" in args and "+wait" in args
    assert "+@hash" in args  # categories are known everywhere; HEXPIRE comes with @hash where it exists


def test_database_restriction_only_where_the_server_has_one() -> None:
    assert "db=0" in setuser_args(USER, HASH, VALKEY_9)
    assert "db=0" not in setuser_args(USER, HASH, VALKEY_8)
    assert "db=0" not in setuser_args(USER, HASH, REDIS_7_0)
    assert "db=0" not in setuser_args(USER, HASH)


def test_without_capabilities_every_entry_is_rendered() -> None:
    assert "+client|setinfo" in setuser_args(USER, HASH) and "-waitaof" in setuser_args(USER, HASH)


def test_selectors_render_as_one_parenthesised_argument_after_the_root_rules() -> None:
    audit = AclSelector(("~audit:ns:t",), ("xadd", "xrange", "xlen", "no-such-command"))
    user = AclUser("mt_ns_t", ("~mem:ns:t:*",), selectors=(audit,))
    caps = ServerCapabilities("valkey", (9, 1, 2), EVERY_COMMAND | {"xadd", "xrange", "xlen"})
    assert setuser_args(user, HASH, caps)[-1] == "(~audit:ns:t +xadd +xrange +xlen)"


# ------------------------------------------------------------------------------------------------------------
# GETUSER normalization (drift detection)

RESP3 = {
    b"flags": [b"sanitize-payload", b"on"],
    b"passwords": [HASH.encode()],
    b"commands": b"-@all +@string -sort",
    b"keys": b"~mem:ns:t:agent:a:* ~mem:ns:t:shared:*",
    b"channels": b"",
    b"databases": b"db=0",
    b"selectors": [],
}


def test_resp2_and_resp3_replies_normalize_alike() -> None:
    resp2 = [item for pair in RESP3.items() for item in pair]
    assert normalize_getuser(resp2) == normalize_getuser(RESP3)


def test_normalized_reply_is_decoded_and_order_free_where_order_means_nothing() -> None:
    reordered = {**RESP3, b"flags": [b"on", b"sanitize-payload"], b"keys": b"~mem:ns:t:shared:* ~mem:ns:t:agent:a:*"}
    assert normalize_getuser(reordered) == normalize_getuser(RESP3)
    assert normalize_getuser(RESP3) == {
        "flags": ["on", "sanitize-payload"],
        "passwords": [HASH],
        "commands": "-@all +@string -sort",
        "keys": "~mem:ns:t:agent:a:* ~mem:ns:t:shared:*",
        "channels": "",
        "databases": "db=0",
        "selectors": [],
    }


def test_command_order_is_kept_because_rules_apply_left_to_right() -> None:
    swapped = {**RESP3, b"commands": b"-sort +@string -@all"}
    assert normalize_getuser(swapped) != normalize_getuser(RESP3)


def test_selectors_are_normalized_too() -> None:
    with_selector = {**RESP3, b"selectors": [[b"commands", b"-@all +xadd", b"keys", b"~audit:ns:t", b"channels", b""]]}
    assert normalize_getuser(with_selector)["selectors"] == [  # type: ignore[index]
        {"commands": "-@all +xadd", "keys": "~audit:ns:t", "channels": ""}
    ]


def test_missing_user_normalizes_to_none() -> None:
    assert normalize_getuser(None) is None
