"""Tenant ACL users on a real server: what they can do, what they cannot, per isolation level, layout and engine.

Two tenants whose names look alike when joined (`a-b/c`, `a/b-c`) are provisioned with `RedisAdmin.set_user`
at each isolation level, in the standalone key layout and in the cluster one (every key under one hash tag: the
rules a `mode: Cluster` store puts on each of its nodes, checked here on one node, where ACLs are decided); the
tests log in with plain redis-py clients, as an agent would. Each login may also append to and read its own
tenant's audit stream (an ACL selector), but never delete, trim, expire or rename it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
from redis.exceptions import NoPermissionError

from memory_operator.builders.acl import (
    ISOLATION_LEVELS,
    AclUser,
    Layout,
    ServerCapabilities,
)
from memory_operator.clients.redis_admin import RedisAdmin
from memory_sandbox.engine import Engine

pytestmark = pytest.mark.integration

TENANTS = (("a-b", "c"), ("a", "b-c"))
AGENTS = ("alpha", "beta")
SECRET = b"not yours"


@dataclass(frozen=True)
class Login:
    user: AclUser
    password: str
    namespace: str
    name: str
    isolation: str
    cluster: bool = False

    @property
    def layout(self) -> Layout:
        return Layout(self.namespace, self.name, self.cluster)

    @property
    def area(self) -> str:
        """Where this login keeps its own data: its agent area under strict, the tenant prefix otherwise."""
        if self.user.agent is not None and self.isolation == "strict":
            return self.layout.agent(self.user.agent)
        return self.layout.prefix

    def outside_keys(self) -> list[str]:
        """Keys this login must neither read nor write (the other tenant's in both layouts)."""
        other_ns, other_name = next(t for t in TENANTS if t != (self.namespace, self.name))
        keys = ["outside:k", f"{self.layout.audit}:k"]  # the audit selector is that one key, not a prefix
        for other in (Layout(other_ns, other_name, False), Layout(other_ns, other_name, True)):
            keys += [f"{other.prefix}k", f"{other.agent('alpha')}k", f"{other.shared}k"]
            keys.append(other.audit)  # only the own tenant's audit stream is granted
        mine_elsewhere = Layout(self.namespace, self.name, not self.cluster)  # its own name in the other layout
        keys += [f"{mine_elsewhere.prefix}k", mine_elsewhere.audit]
        if self.user.agent is not None and self.isolation == "strict":
            other_agent = next(a for a in AGENTS if a != self.user.agent)
            keys += [f"{self.layout.agent(other_agent)}k", f"{self.layout.prefix}k"]
        return keys


@dataclass
class Tenancy:
    """Both tenants provisioned at one isolation level on one engine."""

    isolation: str
    engine: Engine
    admin: RedisAdmin
    caps: ServerCapabilities
    cluster: bool = False
    logins: list[Login] = field(default_factory=list)

    def layout(self, tenant: tuple[str, str] = TENANTS[0]) -> Layout:
        return Layout(*tenant, cluster=self.cluster)

    def first_tenant(self) -> list[Login]:
        return [lg for lg in self.logins if (lg.namespace, lg.name) == TENANTS[0]]

    def login(self, agent: str | None, tenant: tuple[str, str] = TENANTS[0]) -> Login:
        return next(lg for lg in self.logins if (lg.namespace, lg.name) == tenant and lg.user.agent == agent)

    def client(self, login: Login, **kwargs: object) -> redis.Redis:
        return redis.Redis(
            host=self.engine.host,
            port=self.engine.port,
            username=login.user.name,
            password=login.password,
            socket_timeout=5,
            decode_responses=True,
            **kwargs,  # type: ignore[arg-type]
        )


def _provision(setting: tuple[str, str], engine: Engine, admin: RedisAdmin) -> Tenancy:
    isolation, layout = setting
    caps = admin.capabilities()
    setup = Tenancy(isolation, engine, admin, caps, cluster=layout == "cluster")
    for namespace, name in TENANTS:
        for user in Layout(namespace, name, setup.cluster).users(isolation, AGENTS):
            password = secrets.token_urlsafe(24)
            admin.set_user(user, password, caps)
            setup.logins.append(Login(user, password, namespace, name, isolation, setup.cluster))
    return setup


LAYOUTS = ("standalone", "cluster")
SETTINGS = [(level, layout) for level in ISOLATION_LEVELS for layout in LAYOUTS]


def _deprovision(setup: Tenancy) -> None:
    setup.admin.delete_users(lg.user.name for lg in setup.logins)
    for prefix in ("mem:", "audit:", "outside:"):
        setup.admin.scan_delete(prefix)


@pytest.fixture(scope="module", params=SETTINGS, ids="-".join)
def tenancy(request: pytest.FixtureRequest, any_engine: Engine, any_admin: RedisAdmin) -> Iterator[Tenancy]:
    setup = _provision(request.param, any_engine, any_admin)
    yield setup
    _deprovision(setup)


@pytest.fixture(scope="module", params=[s for s in SETTINGS if s[0] != "minimal"], ids="-".join)
def agent_tenancy(request: pytest.FixtureRequest, any_engine: Engine, any_admin: RedisAdmin) -> Iterator[Tenancy]:
    """The levels that give each agent its own ACL user (minimal has none)."""
    setup = _provision(request.param, any_engine, any_admin)
    yield setup
    _deprovision(setup)


@pytest.fixture
def seeded(tenancy: Tenancy) -> Iterator[Tenancy]:
    """Every login's outside keys hold SECRET; the test checks they still do afterwards."""
    admin = tenancy.engine.admin_client()
    outside = {key for lg in tenancy.logins for key in lg.outside_keys()}
    for key in outside:
        admin.set(key, SECRET)
    yield tenancy
    assert {key: admin.get(key) for key in outside} == dict.fromkeys(outside, SECRET)
    admin.delete(*outside)  # some are other tenants' audit streams, which later tests append to
    admin.close()


def _acl_denials(engine: Engine, usernames: set[str]) -> list[dict[str, object]]:
    with engine.admin_client() as admin:
        return [e for e in admin.acl_log(count=1000) if e.get("username") in usernames]


# ------------------------------------------------------------------------------------------------------------
# What a tenant login can do


def _exercise(client: redis.Redis, base: str, caps: ServerCapabilities) -> None:
    """The everyday commands of the agent library, each checked for its result."""
    k = f"{base}t{time.monotonic_ns()}:"
    assert client.ping()
    assert client.echo("hi") == "hi"
    assert client.client_getname() == "agent"
    assert isinstance(client.client_id(), int)
    assert client.set(f"{k}s", "v") and client.get(f"{k}s") == "v"
    assert client.mset({f"{k}m1": "1", f"{k}m2": "2"})
    assert client.mget([f"{k}m1", f"{k}m2"]) == ["1", "2"]
    assert client.incr(f"{k}n") == 1
    assert client.exists(f"{k}s", f"{k}n") == 2
    assert client.type(f"{k}s") == "string"
    assert client.expire(f"{k}s", 100) and 0 < client.ttl(f"{k}s") <= 100 and client.pttl(f"{k}s") > 0
    assert client.pexpire(f"{k}s", 100_000) and client.persist(f"{k}s") and client.ttl(f"{k}s") == -1
    assert client.rpush(f"{k}l", "a", "b", "c") == 3 and client.lrange(f"{k}l", 0, -1) == ["a", "b", "c"]
    assert client.ltrim(f"{k}l", -2, -1) and client.llen(f"{k}l") == 2
    assert client.hset(f"{k}h", mapping={"f": "1", "g": "2"}) == 2 and client.hgetall(f"{k}h") == {
        "f": "1",
        "g": "2",
    }
    if caps.knows("hexpire"):  # per-field TTL: Valkey 9, Redis >= 7.4
        assert client.hexpire(f"{k}h", 100, "f") == [1] and 0 < client.httl(f"{k}h", "f")[0] <= 100
    assert client.sadd(f"{k}set", "x", "y") == 2 and client.smembers(f"{k}set") == {"x", "y"}
    assert client.zadd(f"{k}z", {"a": 1, "b": 2}) == 2 and client.zrange(f"{k}z", 0, -1) == ["a", "b"]
    first = client.xadd(f"{k}x", {"role": "user", "text": "hi"})
    client.xadd(f"{k}x", {"role": "assistant", "text": "hello"})
    entries = client.xrange(f"{k}x")
    assert len(entries) == 2 and entries[0][0] == first and entries[0][1]["role"] == "user"
    assert client.xrevrange(f"{k}x", count=1)[0][1]["role"] == "assistant"
    assert client.xlen(f"{k}x") == 2 and client.xtrim(f"{k}x", maxlen=1, approximate=False) == 1
    with client.pipeline(transaction=True) as pipe:  # redis-py's default: MULTI/EXEC
        assert pipe.set(f"{k}p", "1").incr(f"{k}p").execute() == [True, 2]
    with client.pipeline(transaction=True) as pipe:  # check-and-set, as SharedContext versions do
        pipe.watch(f"{k}p")
        current = int(pipe.get(f"{k}p") or 0)
        pipe.multi()
        pipe.set(f"{k}p", current + 1)
        assert pipe.execute() == [True]
    assert client.get(f"{k}p") == "3"
    assert client.memory_usage(f"{k}s") > 0 and client.object("encoding", f"{k}s") is not None
    assert client.rename(f"{k}s", f"{k}s2") and client.get(f"{k}s2") == "v"
    assert client.unlink(f"{k}s2") == 1 and client.delete(f"{k}n", f"{k}l") == 2


@pytest.mark.parametrize("protocol", [2, 3])
def test_logins_connect_cleanly_and_run_the_everyday_commands(tenancy: Tenancy, protocol: int) -> None:
    logins = tenancy.first_tenant()
    with tenancy.engine.admin_client() as admin:
        admin.acl_log_reset()
    for login in logins:
        with tenancy.client(login, protocol=protocol, client_name="agent") as client:
            _exercise(client, login.area, tenancy.caps)
    # A clean connect: redis-py's handshake (HELLO, CLIENT SETINFO/SETNAME) left no denial behind.
    assert _acl_denials(tenancy.engine, {lg.user.name for lg in logins}) == []


def test_agents_share_the_shared_area(agent_tenancy: Tenancy) -> None:
    tenancy = agent_tenancy
    key = f"{tenancy.layout().shared}context"
    with tenancy.client(tenancy.login("alpha")) as alpha, tenancy.client(tenancy.login("beta")) as beta:
        assert alpha.set(key, "from alpha")
        assert beta.get(key) == "from alpha"
        assert beta.append(key, ", and beta") > 0
        assert alpha.get(key) == "from alpha, and beta"


def test_agent_areas_are_private_only_under_strict(agent_tenancy: Tenancy) -> None:
    tenancy = agent_tenancy
    key = f"{tenancy.layout().agent('alpha')}notes"
    with tenancy.client(tenancy.login("alpha")) as alpha, tenancy.client(tenancy.login("beta")) as beta:
        assert alpha.set(key, "mine")
        if tenancy.isolation == "strict":
            with pytest.raises(NoPermissionError):
                beta.get(key)
        else:
            assert beta.get(key) == "mine"


def test_tenant_user_reaches_every_area_of_its_tenant(tenancy: Tenancy) -> None:
    keys = [f"{tenancy.layout().agent(a)}k" for a in AGENTS] + [f"{tenancy.layout().shared}k"]
    with tenancy.client(tenancy.login(None)) as client:
        for key in keys:
            assert client.set(key, "retention may touch it") and client.delete(key) == 1


# ------------------------------------------------------------------------------------------------------------
# Commands no tenant login may run, whatever the keys


@dataclass(frozen=True)
class Forbidden:
    args: tuple[str, ...]
    run: bool = True  # False: only ACL DRYRUN, where a wrong verdict would wreck the server or the connection

    @property
    def command(self) -> str:
        name = self.args[0].lower()
        sub = self.args[1].lower() if len(self.args) > 1 else ""
        return f"{name}|{sub}" if name in _CONTAINERS else name


_CONTAINERS = {"acl", "client", "config", "object", "memory", "script", "function", "slowlog", "latency"}
_CONTAINERS |= {"module", "cluster", "pubsub", "xinfo", "command"}

FORBIDDEN = [
    Forbidden(("SCAN", "0")),
    Forbidden(("KEYS", "*")),
    Forbidden(("RANDOMKEY",)),
    Forbidden(("DBSIZE",)),
    Forbidden(("INFO",)),
    Forbidden(("INFO", "keyspace")),
    Forbidden(("FLUSHALL",)),
    Forbidden(("FLUSHDB",)),
    Forbidden(("SWAPDB", "0", "1")),
    Forbidden(("MOVE", "{own}", "1")),
    Forbidden(("SELECT", "1")),
    Forbidden(("COPY", "{own}", "{own}2")),
    Forbidden(("COPY", "{own}", "{own}2", "DB", "1")),
    Forbidden(("DUMP", "{own}")),
    Forbidden(("RESTORE", "{own}3", "0", "payload")),
    Forbidden(("MIGRATE", "127.0.0.1", "1", "{own}", "0", "100")),
    Forbidden(("SORT", "{own}")),
    Forbidden(("SORT", "{own}", "BY", "nosort", "GET", "{own}*")),
    Forbidden(("SORT_RO", "{own}")),
    Forbidden(("CONFIG", "GET", "maxmemory")),
    Forbidden(("CONFIG", "SET", "maxmemory", "1")),
    Forbidden(("DEBUG", "SLEEP", "0"), run=False),  # enable-debug-command refuses it before ACLs do
    Forbidden(("ACL", "WHOAMI")),
    Forbidden(("ACL", "LOG")),
    Forbidden(("ACL", "LIST")),
    Forbidden(("ACL", "USERS")),
    Forbidden(("ACL", "GETUSER", "default")),
    Forbidden(("ACL", "SETUSER", "escalate", "on", "nopass", "~*", "+@all")),
    Forbidden(("ACL", "DELUSER", "default")),
    Forbidden(("ACL", "CAT")),
    Forbidden(("MODULE", "LIST")),
    Forbidden(("SHUTDOWN",), run=False),
    Forbidden(("MONITOR",), run=False),
    Forbidden(("EVAL", "return 1", "0")),
    Forbidden(("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0")),
    Forbidden(("EVAL_RO", "return 1", "0")),
    Forbidden(("SCRIPT", "LOAD", "return 1")),
    Forbidden(("SCRIPT", "FLUSH")),
    Forbidden(("FCALL", "f", "0")),
    Forbidden(("FUNCTION", "LIST")),
    Forbidden(("FUNCTION", "FLUSH")),
    Forbidden(("CLIENT", "LIST")),
    Forbidden(("CLIENT", "INFO")),
    Forbidden(("CLIENT", "KILL", "ID", "999999")),
    Forbidden(("CLIENT", "PAUSE", "1")),
    Forbidden(("CLIENT", "NO-EVICT", "on")),
    Forbidden(("CLIENT", "TRACKING", "on")),
    Forbidden(("SLOWLOG", "GET")),
    Forbidden(("LATENCY", "LATEST")),
    Forbidden(("MEMORY", "STATS")),
    Forbidden(("MEMORY", "DOCTOR")),
    Forbidden(("SAVE",)),
    Forbidden(("BGSAVE",)),
    Forbidden(("BGREWRITEAOF",)),
    Forbidden(("LASTSAVE",)),
    Forbidden(("REPLICAOF", "NO", "ONE"), run=False),
    Forbidden(("SLAVEOF", "NO", "ONE"), run=False),
    Forbidden(("SYNC",), run=False),
    Forbidden(("PSYNC", "?", "-1"), run=False),
    Forbidden(("FAILOVER",), run=False),
    Forbidden(("CLUSTER", "INFO")),
    Forbidden(("OBJECT", "FREQ", "{own}")),
    Forbidden(("OBJECT", "IDLETIME", "{own}")),
    # Not here: WAIT, granted for MEMORY_WAIT_REPLICAS (names no key; see builders/acl.py and
    # test_wait_is_granted_and_names_no_key below).
    Forbidden(("WAITAOF", "0", "0", "0")),
    Forbidden(("PUBLISH", "ch", "m")),
    Forbidden(("SPUBLISH", "ch", "m")),
    Forbidden(("SUBSCRIBE", "ch"), run=False),
    Forbidden(("PSUBSCRIBE", "*"), run=False),
    Forbidden(("PUBSUB", "CHANNELS")),
    Forbidden(("TOUCH", "{own}")),
    Forbidden(("LOLWUT",)),
    Forbidden(("ROLE",)),
    Forbidden(("COMMAND", "LIST")),
    # Not here: RESET, which servers exempt from ACLs; it only logs the connection out to `default`.
]


def _dryrun(engine: Engine, username: str, args: list[str]) -> str:
    with engine.admin_client() as admin:
        reply = admin.execute_command("ACL", "DRYRUN", username, *args)
    return reply.decode() if isinstance(reply, bytes) else str(reply)


@pytest.mark.parametrize("forbidden", FORBIDDEN, ids=lambda f: " ".join(f.args))
def test_forbidden_command_is_refused(tenancy: Tenancy, forbidden: Forbidden) -> None:
    if not tenancy.caps.knows(forbidden.command):
        # Absent from this server (e.g. WAITAOF before Redis 7.2): it is refused as an unknown command.
        with tenancy.client(tenancy.first_tenant()[0]) as client, pytest.raises(redis.ResponseError, match="unknown"):
            client.execute_command(*forbidden.args)
        return
    for login in tenancy.first_tenant():
        args = [a.replace("{own}", f"{login.area}own") for a in forbidden.args]
        assert _dryrun(tenancy.engine, login.user.name, args) != "OK", (login.user.name, args)
        if forbidden.run:
            with tenancy.client(login) as client, pytest.raises(NoPermissionError):
                client.execute_command(*args)


def test_wait_is_granted_and_names_no_key(tenancy: Tenancy) -> None:
    """WAIT is the one server-wide command a tenant may run: it returns a replica count and touches no key."""
    for login in tenancy.first_tenant():
        assert _dryrun(tenancy.engine, login.user.name, ["WAIT", "0", "0"]) == "OK"
        with tenancy.client(login) as client:
            assert client.execute_command("WAIT", "0", "0") == 0


# ------------------------------------------------------------------------------------------------------------
# Keys outside a login's patterns: refused for reading and writing, alone or mixed with its own keys

OUTSIDE_OPERATIONS = [
    ("GET", "{out}"),
    ("SET", "{out}", "x"),
    ("GETDEL", "{out}"),
    ("APPEND", "{out}", "x"),
    ("EXISTS", "{out}"),
    ("TYPE", "{out}"),
    ("TTL", "{out}"),
    ("EXPIRE", "{out}", "1"),
    ("PERSIST", "{out}"),
    ("DEL", "{out}"),
    ("UNLINK", "{out}"),
    ("MGET", "{own}", "{out}"),
    ("MSET", "{own}", "1", "{out}", "1"),
    ("RENAME", "{own}", "{out}"),
    ("RENAME", "{out}", "{own}"),
    ("RENAMENX", "{own}", "{out}"),
    ("COPY", "{out}", "{own}"),
    ("COPY", "{own}", "{out}"),
    ("SORT", "{own}", "BY", "{out}"),
    ("HSET", "{out}", "f", "v"),
    ("HGETALL", "{out}"),
    ("LPUSH", "{out}", "v"),
    ("LMOVE", "{own}", "{out}", "LEFT", "RIGHT"),
    ("LMPOP", "2", "{own}", "{out}", "LEFT"),
    ("SUNIONSTORE", "{own}", "{out}"),
    ("SINTERCARD", "2", "{own}", "{out}"),
    ("ZUNIONSTORE", "{own}", "1", "{out}"),
    ("XADD", "{out}", "*", "f", "v"),
    ("XRANGE", "{out}", "-", "+"),
    ("XREAD", "STREAMS", "{own}", "{out}", "0", "0"),
    ("MEMORY", "USAGE", "{out}"),
    ("OBJECT", "ENCODING", "{out}"),
    ("WATCH", "{out}"),
]


@pytest.mark.parametrize("operation", OUTSIDE_OPERATIONS, ids=" ".join)
def test_keys_outside_the_patterns_are_refused(seeded: Tenancy, operation: tuple[str, ...]) -> None:
    for login in seeded.first_tenant():
        with seeded.client(login) as client:
            for outside in login.outside_keys():
                args = [a.replace("{own}", f"{login.area}own").replace("{out}", outside) for a in operation]
                with pytest.raises(NoPermissionError):
                    client.execute_command(*args)


def test_transaction_touching_an_outside_key_writes_nothing(seeded: Tenancy) -> None:
    for login in seeded.first_tenant():
        own = f"{login.area}tx"
        with seeded.client(login) as client:
            for outside in login.outside_keys():
                with client.pipeline(transaction=True) as pipe:
                    pipe.set(own, "written").set(outside, "stolen")
                    with pytest.raises(NoPermissionError):
                        pipe.execute()
                assert client.get(own) is None


# ------------------------------------------------------------------------------------------------------------
# The audit stream: append and read, never remove


def _own_audit(login: Login) -> str:
    return login.layout.audit


def test_every_login_appends_to_and_reads_its_tenants_audit_stream(tenancy: Tenancy) -> None:
    for login in tenancy.first_tenant():
        key = _own_audit(login)
        with tenancy.client(login) as client:
            entry = client.xadd(key, {"actor": login.user.name, "action": "save"})
            assert client.xrange(key, min=entry, max=entry)[0][1]["actor"] == login.user.name
            assert client.xrevrange(key, count=1)[0][0] == entry
            assert client.xlen(key) >= 1
            assert client.xinfo_stream(key)["last-generated-id"] == entry


def test_audit_append_can_be_chained_under_watch(tenancy: Tenancy) -> None:
    """The library links each event to the head it read under WATCH; WATCH must be its own command."""
    login = tenancy.login(None)
    key = _own_audit(login)
    with tenancy.client(login) as client, client.pipeline(transaction=True) as pipe:
        pipe.watch(key)
        head = pipe.xrevrange(key, count=1)
        pipe.multi()
        pipe.set(f"{login.area}data", "1").xadd(key, {"prev": head[0][0] if head else "genesis"})
        assert len(pipe.execute()) == 2


def test_watch_on_a_data_key_and_the_audit_key_together_is_refused(tenancy: Tenancy) -> None:
    """Root rules and a selector never combine within one command: each WATCH names keys of one side only."""
    login = tenancy.login(None)
    with tenancy.client(login) as client, pytest.raises(NoPermissionError):
        client.execute_command("WATCH", f"{login.area}data", _own_audit(login))


# Not here, because no ACL can refuse it: XADD's own MAXLEN/MINID options trim the stream, and ACLs do not look
# at arguments. The trail is hash-chained, so such a trim is detected instead: the oldest remaining event no
# longer links to the genesis (tests/library/test_audit.py).
AUDIT_REMOVALS = [
    ("DEL", "{audit}"),
    ("UNLINK", "{audit}"),
    ("XTRIM", "{audit}", "MAXLEN", "0"),
    ("XTRIM", "{audit}", "MINID", "+"),
    ("XDEL", "{audit}", "{entry}"),
    ("XSETID", "{audit}", "99999999999999-0"),
    ("EXPIRE", "{audit}", "1"),
    ("PEXPIRE", "{audit}", "1"),
    ("EXPIREAT", "{audit}", "1"),
    ("PERSIST", "{audit}"),
    ("RENAME", "{audit}", "{own}"),
    ("RENAME", "{own}", "{audit}"),
    ("COPY", "{own}", "{audit}", "REPLACE"),
    ("SET", "{audit}", "x"),
    ("GETDEL", "{audit}"),
    ("XGROUP", "CREATE", "{audit}", "g", "0"),
    ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "{audit}", ">"),
    ("RESTORE", "{audit}", "0", "payload", "REPLACE"),
]


@pytest.mark.parametrize("operation", AUDIT_REMOVALS, ids=" ".join)
def test_audit_stream_cannot_be_removed_trimmed_expired_or_rewritten(
    tenancy: Tenancy, operation: tuple[str, ...]
) -> None:
    for login in tenancy.first_tenant():
        key = _own_audit(login)
        with tenancy.engine.admin_client(decode_responses=True) as admin:
            entry = admin.xadd(key, {"action": "seed"})
            before = admin.xrange(key)
            with tenancy.client(login) as client:
                client.set(f"{login.area}own", "mine")
                args = [
                    a.replace("{audit}", key).replace("{own}", f"{login.area}own").replace("{entry}", entry)
                    for a in operation
                ]
                with pytest.raises(NoPermissionError):
                    client.execute_command(*args)
            assert admin.xrange(key) == before and admin.ttl(key) == -1
