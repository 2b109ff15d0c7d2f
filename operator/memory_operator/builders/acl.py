"""Pure builder of tenant ACL users: the key layout, the users per isolation level, their ACL SETUSER rules.

Key layout (every name is a Kubernetes name, so none contains ``:`` or ``_``; that is what makes prefixes and
usernames collision-free across namespaces)::

    mem:{namespace}:{name}:                  the tenant prefix: all tenant data lives under it
    mem:{namespace}:{name}:agent:{agent}:    one agent's own area (isolation "strict")
    mem:{namespace}:{name}:shared:           the area every agent of the tenant shares
    audit:{namespace}:{name}                 the audit stream, outside the prefix: append and read only (AUDIT_COMMANDS)
    seal:{namespace}:{name}                  the operator's seal of that stream (admin writes; the job user reads)
    jobs:{namespace}:{name}:{job}            what the tenant's jobs record (the job user writes; nobody else)

    mt_{namespace}_{name}                    the tenant's ACL user (whole prefix)
    mt_{namespace}_{name}_{agent}            an agent's ACL user (isolation "moderate" and "strict")
    mt_{namespace}_{name}__jobs              the jobs' ACL user: reads the prefix, trims by retention, writes results

The command set is one least-privilege list for every level; levels differ only in users and key patterns.
Servers differ in which commands exist and `ACL SETUSER` rejects a rule naming an unknown command, so the
rules are rendered for a `ServerCapabilities` (what the server reported) and entries it lacks are dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from memory_client import contract
from memory_client.contract import ISOLATION_LEVELS

__all__ = [
    "ALLOWED_CATEGORIES",
    "ALLOWED_COMMANDS",
    "AUDIT_COMMANDS",
    "DENIED_CATEGORIES",
    "DENIED_COMMANDS",
    "ISOLATION_LEVELS",
    "JOB_WRITE_COMMANDS",
    "AclSelector",
    "AclUser",
    "ServerCapabilities",
    "agent_prefix",
    "agent_username",
    "audit_key",
    "audit_selector",
    "glob_escape",
    "hash_password",
    "job_username",
    "plan_acl_users",
    "plan_job_user",
    "results_prefix",
    "seal_key",
    "setuser_args",
    "shared_prefix",
    "tenant_prefix",
    "tenant_username",
]


# Categories granted whole. Every command in them names the keys it touches (checked with COMMAND INFO on
# Valkey 9.1 and Redis 7.0.15), so the key patterns bound them -- except SORT/SORT_RO, denied below.
# New per-type commands (HEXPIRE & co. in Valkey 9 / Redis >= 7.4, DELIFEQ, MSETEX) arrive with the category,
# which is why types are granted by category and not as `+@read +@write`: those two also carry FLUSHALL,
# KEYS, SCAN, RANDOMKEY, SWAPDB, MOVE, RESTORE, MIGRATE, DUMP, DBSIZE.
ALLOWED_CATEGORIES: Final = ("@string", "@list", "@hash", "@set", "@sortedset", "@stream", "@transaction")

# Single commands outside those categories, each with the reason the agent library (or redis-py) needs it.
ALLOWED_COMMANDS: Final[Mapping[str, str]] = {
    "del": "delete own keys",
    "unlink": "delete own keys without blocking the server",
    "exists": "test own keys",
    "type": "inspect own keys",
    "expire": "TTL on own keys (retention)",
    "pexpire": "TTL on own keys (retention)",
    "expireat": "TTL on own keys (retention)",
    "pexpireat": "TTL on own keys (retention)",
    "expiretime": "read TTL of own keys",
    "pexpiretime": "read TTL of own keys",
    "ttl": "read TTL of own keys",
    "pttl": "read TTL of own keys",
    "persist": "remove TTL of own keys",
    "rename": "atomic swap within the prefix; both names are checked against the key patterns",
    "renamenx": "atomic swap within the prefix; both names are checked against the key patterns",
    "object|encoding": "memory diagnostics of own keys",
    "memory|usage": "size of own keys (quota accounting)",
    "ping": "health checks and redis-py's connection checks",
    "wait": (
        "durability: a write acknowledged once replicas have it (MEMORY_WAIT_REPLICAS); "
        "names no key, reveals only how many replicas the node has"
    ),
    "echo": "connection checks",
    "hello": "redis-py's handshake (RESP3 and AUTH in one command)",
    "auth": "re-authentication after a credential rotation",
    "client|setinfo": "redis-py sends it on every connect (Redis >= 7.2, Valkey)",
    "client|setname": "name connections for the operator's diagnostics",
    "client|getname": "read back the connection name",
    "client|id": "the connection's own id",
}

# What every user of a tenant may do on the tenant's audit stream, through an ACL selector of its own: append
# and read, never DEL/UNLINK/XTRIM/XDEL/EXPIRE/RENAME (a selector starts from -@all, so nothing else is granted).
# The audit key lies outside the tenant prefix, so the root rules never reach it. Trimming by age is the
# operator's job, as admin.
AUDIT_COMMANDS: Final[Mapping[str, str]] = {
    "xadd": "append an audit event",
    "xrange": "read the trail oldest first (export, verification)",
    "xrevrange": "read the chain head, whose hash the next event links to",
    "xlen": "count events",
    "xinfo|stream": "first and last entry for reports",
    "watch": "optimistic concurrency: an event links to the head only if no other writer appended meanwhile",
}

# What the jobs' user may change in the tenant's data, through a selector of its own (its root rules read the
# prefix only): the retention job's exact trims, its backstop TTLs, and index entries of keys that are gone.
JOB_WRITE_COMMANDS: Final[Mapping[str, str]] = {
    "xtrim": "trim conversation entries past the maximum age",
    "pexpire": "a TTL on a key written without one",
    "hdel": "drop the index entry of a key that no longer exists",
    "hincrby": "release that key's bytes from the usage counter",
}

# Denials applied after every grant, so no category -- today's or a future server's -- can re-open them.
DENIED_CATEGORIES: Final = ("@admin", "@dangerous", "@scripting", "@pubsub")

# Named denials: most are already outside the grants (or inside a denied category); naming them keeps the
# decision explicit and survives a server moving a command between categories.
DENIED_COMMANDS: Final[Mapping[str, str]] = {
    "keys": "key patterns do not filter it: enumerates every tenant's keys",
    "scan": "key patterns do not filter it: enumerates every tenant's keys",
    "randomkey": "key patterns do not filter it: reveals other tenants' key names",
    "dbsize": "reveals the server-wide key count",
    "info": "reveals server-wide state (keyspace sizes, clients, memory of every tenant)",
    "flushall": "in @write: would erase every tenant",
    "flushdb": "in @write: would erase every tenant",
    "swapdb": "in @write: swaps whole databases",
    "move": "moves keys to another database, outside what erasure scans",
    "select": "tenants live in database 0; the URL in their Secret pins it",
    "copy": "COPY ... DB n writes into another database: outside quota and erasure (verified)",
    "dump": "serialised payloads are only useful to RESTORE",
    "restore": "deserialises arbitrary payloads",
    "migrate": "sends keys to another server",
    "sort": "BY/GET patterns name other keys; nothing in the library sorts server-side",
    "sort_ro": "BY/GET patterns name other keys; nothing in the library sorts server-side",
    "eval": "scripts: key access undeclared in advance, server-side CPU",
    "evalsha": "scripts",
    "eval_ro": "scripts",
    "evalsha_ro": "scripts",
    "script": "scripts",
    "fcall": "functions",
    "fcall_ro": "functions",
    "function": "functions",
    "acl": "every subcommand, WHOAMI included: the client knows its user from its Secret",
    "config": "server administration",
    "debug": "server administration",
    "module": "server administration",
    "shutdown": "server administration",
    "monitor": "sees every tenant's commands",
    "slowlog": "shows other tenants' commands and arguments",
    "latency": "server administration",
    "save": "persistence control",
    "bgsave": "persistence control",
    "bgrewriteaof": "persistence control",
    "replicaof": "replication control",
    "slaveof": "replication control",
    "sync": "replication stream: every tenant's data",
    "psync": "replication stream: every tenant's data",
    "failover": "replication control",
    "cluster": "cluster administration",
    "waitaof": "reveals persistence topology",
    "client|list": "shows every connection on the server",
    "client|kill": "disconnects other tenants",
    "client|pause": "stops the whole server",
    "object|freq": "not needed; diagnostics are limited to OBJECT ENCODING",
    "publish": "no pub/sub: channels are reset too",
    "subscribe": "no pub/sub: channels are reset too",
}

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")

# Valkey 9 added per-user database restrictions (`db=<n>`, shown as `databases` in ACL GETUSER).
_DB_SELECTORS_SINCE: Final = (9, 0, 0)


@dataclass(frozen=True)
class ServerCapabilities:
    """What a server reported about itself; decides which rules it accepts.

    `commands` holds lower-case names as `COMMAND LIST` reports them, subcommands as ``container|sub``.
    """

    engine: str  # "valkey" or "redis"
    version: tuple[int, int, int]
    commands: frozenset[str]

    def knows(self, command: str) -> bool:
        """Categories we use exist on every supported server (Redis >= 7.0); commands must be listed."""
        return command.startswith("@") or command in self.commands

    @property
    def database_selectors(self) -> bool:
        return self.engine == "valkey" and self.version >= _DB_SELECTORS_SINCE


@dataclass(frozen=True)
class AclSelector:
    """A further key pattern with its own command set (ACL selector, Redis >= 7.0).

    Used for the audit stream: a tenant may append to ``audit:{ns}:{name}`` but never delete or trim it
    (`audit_selector`).
    """

    key_patterns: tuple[str, ...]
    commands: tuple[str, ...]


@dataclass(frozen=True)
class AclUser:
    """One ACL user to provision: its name, the key patterns it may touch and the agent it serves (if any)."""

    name: str
    key_patterns: tuple[str, ...]
    agent: str | None = None
    selectors: tuple[AclSelector, ...] = ()


def _check(value: str, pattern: re.Pattern[str], max_len: int, what: str) -> str:
    if len(value) > max_len or not pattern.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a valid Kubernetes name")
    return value


def _tenant(namespace: str, name: str) -> tuple[str, str]:
    return (
        _check(namespace, _LABEL, 63, "namespace"),
        _check(name, _SUBDOMAIN, 253, "tenant name"),
    )


# The key names are the contract's (memory_client.contract); here they are built from checked Kubernetes names.


# `cluster`: the layout of a store in cluster mode, every key of a tenant under one hash tag (one slot).


def tenant_prefix(namespace: str, name: str, *, cluster: bool = False) -> str:
    return contract.tenant_prefix(*_tenant(namespace, name), cluster=cluster)


def agent_prefix(namespace: str, name: str, agent: str, *, cluster: bool = False) -> str:
    return contract.agent_prefix(tenant_prefix(namespace, name, cluster=cluster), _check(agent, _LABEL, 63, "agent"))


def shared_prefix(namespace: str, name: str, *, cluster: bool = False) -> str:
    return contract.shared_prefix(tenant_prefix(namespace, name, cluster=cluster))


def audit_key(namespace: str, name: str, *, cluster: bool = False) -> str:
    return contract.audit_key(*_tenant(namespace, name), cluster=cluster)


def seal_key(namespace: str, name: str, *, cluster: bool = False) -> str:
    return contract.seal_key(*_tenant(namespace, name), cluster=cluster)


def results_prefix(namespace: str, name: str, *, cluster: bool = False) -> str:
    return contract.results_prefix(*_tenant(namespace, name), cluster=cluster)


@dataclass(frozen=True)
class Layout:
    """Where one tenant's keys are: the standalone layout, or on a cluster (a MemoryStore in `mode: Cluster`)
    every key under one hash tag, so the tenant lives in one slot and its transactions stay single-slot."""

    namespace: str
    name: str
    cluster: bool = False

    @property
    def prefix(self) -> str:
        return tenant_prefix(self.namespace, self.name, cluster=self.cluster)

    @property
    def shared(self) -> str:
        return shared_prefix(self.namespace, self.name, cluster=self.cluster)

    @property
    def audit(self) -> str:
        return audit_key(self.namespace, self.name, cluster=self.cluster)

    @property
    def seal(self) -> str:
        return seal_key(self.namespace, self.name, cluster=self.cluster)

    @property
    def results(self) -> str:
        return results_prefix(self.namespace, self.name, cluster=self.cluster)

    def agent(self, agent: str) -> str:
        return agent_prefix(self.namespace, self.name, agent, cluster=self.cluster)

    def users(self, isolation: str, agents: Sequence[str]) -> list[AclUser]:
        return plan_acl_users(self.namespace, self.name, isolation, agents, cluster=self.cluster)

    def job_user(self) -> AclUser:
        return plan_job_user(self.namespace, self.name, cluster=self.cluster)


#: every ACL user the operator makes is named USER_BASE_<ns>_<tenant>[...]: `RedisAdmin.users_under(USER_BASE)`
USER_BASE: Final = "mt"


def tenant_username(namespace: str, name: str) -> str:
    ns, nm = _tenant(namespace, name)
    return f"{USER_BASE}_{ns}_{nm}"


def agent_username(namespace: str, name: str, agent: str) -> str:
    return f"{tenant_username(namespace, name)}_{_check(agent, _LABEL, 63, 'agent')}"


def job_username(namespace: str, name: str) -> str:
    """`__jobs`: no agent (a DNS label) starts with `_`, so it never collides with an agent's user."""
    return f"{tenant_username(namespace, name)}__jobs"


def glob_escape(text: str) -> str:
    """`text` as a literal inside a Redis glob (key patterns, SCAN MATCH)."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _under(prefix: str) -> str:
    return f"~{glob_escape(prefix)}*"


def audit_selector(namespace: str, name: str, *, cluster: bool = False) -> AclSelector:
    """Append-and-read access to the tenant's audit stream, and nothing else on that key."""
    return AclSelector((f"~{glob_escape(audit_key(namespace, name, cluster=cluster))}",), tuple(AUDIT_COMMANDS))


def plan_acl_users(
    namespace: str, name: str, isolation: str, agents: Sequence[str], *, cluster: bool = False
) -> list[AclUser]:
    """The ACL users a tenant needs: the tenant user first, then one per agent (sorted, deduplicated).

    Every user, at every level, gets the audit selector: each agent appends its own events to the trail.
    Raises ValueError for an unknown isolation level or a name that is not a valid Kubernetes name.
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"isolation {isolation!r} is not one of {', '.join(ISOLATION_LEVELS)}")
    whole: tuple[str, ...] = (_under(tenant_prefix(namespace, name, cluster=cluster)),)
    audit = (audit_selector(namespace, name, cluster=cluster),)
    users = [AclUser(tenant_username(namespace, name), whole, selectors=audit)]
    names = sorted(set(agents))
    for agent in names:
        _check(agent, _LABEL, 63, "agent")
    if isolation == "minimal":  # every agent shares the tenant user
        return users
    for agent in names:
        patterns = whole
        if isolation == "strict":
            patterns = (
                _under(agent_prefix(namespace, name, agent, cluster=cluster)),
                _under(shared_prefix(namespace, name, cluster=cluster)),
            )
        users.append(AclUser(agent_username(namespace, name, agent), patterns, agent, audit))
    return users


def plan_job_user(namespace: str, name: str, *, cluster: bool = False) -> AclUser:
    """The user the tenant's CronJobs run as: it reads the tenant's data, trail and seal, changes the data only
    as the retention job must (JOB_WRITE_COMMANDS), and alone writes the results area, so what the operator
    publishes from there was never written with a tenant's or an agent's credentials."""
    prefix = tenant_prefix(namespace, name, cluster=cluster)
    patterns = (
        f"%R{_under(prefix)}",
        f"%R~{glob_escape(audit_key(namespace, name, cluster=cluster))}",
        f"%R~{glob_escape(seal_key(namespace, name, cluster=cluster))}",
        _under(results_prefix(namespace, name, cluster=cluster)),
    )
    retention = AclSelector((_under(prefix),), tuple(JOB_WRITE_COMMANDS))
    return AclUser(job_username(namespace, name), patterns, selectors=(retention,))


def hash_password(password: str) -> str:
    """The form `ACL SETUSER` takes with ``#``: the cleartext never travels in a command."""
    return hashlib.sha256(password.encode()).hexdigest()


def _known(commands: Iterable[str], caps: ServerCapabilities | None) -> list[str]:
    return [c for c in commands if caps is None or caps.knows(c)]


def _command_rules(caps: ServerCapabilities | None) -> list[str]:
    return [
        "-@all",
        *(f"+{c}" for c in _known(ALLOWED_CATEGORIES, caps)),
        *(f"+{c}" for c in _known(ALLOWED_COMMANDS, caps)),
        *(f"-{c}" for c in _known(DENIED_CATEGORIES, caps)),
        *(f"-{c}" for c in _known(DENIED_COMMANDS, caps)),
    ]


def _selector_rule(selector: AclSelector, caps: ServerCapabilities | None) -> str:
    grants = (f"+{c}" for c in _known(selector.commands, caps))
    return f"({' '.join([*selector.key_patterns, *grants])})"


def setuser_args(user: AclUser, password_sha256: str, capabilities: ServerCapabilities | None = None) -> list[str]:
    """The arguments after ``ACL SETUSER <user.name>``: a full, declarative reset to the desired rules.

    `capabilities` drops the commands the server does not know (SETUSER would fail on them) and adds the
    database restriction where the server has one; None renders every entry, for the newest servers only.
    """
    if not _SHA256_HEX.fullmatch(password_sha256):
        raise ValueError("password_sha256 must be 64 lower-case hex digits")
    database = ["db=0"] if capabilities is not None and capabilities.database_selectors else []
    return [
        "reset",
        "on",
        f"#{password_sha256}",
        # `reset` follows acl-pubsub-default, which a server may set to allchannels.
        "resetchannels",
        *database,
        *user.key_patterns,
        *_command_rules(capabilities),
        *(_selector_rule(s, capabilities) for s in user.selectors),
    ]
