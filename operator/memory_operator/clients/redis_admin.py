"""The admin connection to one Redis/Valkey store: server facts, tenant ACL users, key sweeps (sync redis-py).

Every failure leaves this module as one of the `StoreError` subclasses below. Their messages name the endpoint
(host:port) and what was being done -- never a password or a password hash (the server echoes a rejected
`#<hash>` rule back in its error, so server messages are redacted before they are quoted).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, cast
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.exceptions import NoPermissionError
from redis.retry import Retry

from memory_client import contract
from memory_client.audit import GENESIS, chain_hash
from memory_client.contract import CONTEXT_DOCUMENT_FIELD, as_text, is_sealed, plain_by_design
from memory_client.seal import TrailInfo
from memory_operator.builders.acl import (
    AclUser,
    ServerCapabilities,
    glob_escape,
    hash_password,
    setuser_args,
)

__all__ = [
    "AclChange",
    "RedisAdmin",
    "ServerInfo",
    "StoreAuthFailed",
    "StoreCommandError",
    "StoreError",
    "StoreSlotMoved",
    "StoreUnavailable",
    "StoreUnsupported",
    "SurveyScope",
    "Usage",
    "normalize_getuser",
]

#: The oldest servers whose ACLs (selectors, `%R~`/`%W~` key permissions, ACL DRYRUN) we rely on.
MINIMUM_VERSIONS: Final = {"redis": (7, 0, 0), "valkey": (8, 0, 0)}

_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


class StoreError(Exception):
    """A store operation failed; `endpoint` is host:port. The message never holds a secret."""

    def __init__(self, message: str, endpoint: str) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint


class StoreUnavailable(StoreError):
    """The store did not answer: connection refused, timeout, DNS failure, or still loading its data."""


class StoreAuthFailed(StoreUnavailable):
    """The store answered but refused the admin credentials (WRONGPASS/NOAUTH) or lacks a permission for them.

    A subclass of StoreUnavailable: callers that only care whether the store can be used catch both.
    """


class StoreUnsupported(StoreError):
    """The server is too old (Redis < 7, Valkey < 8) or has no ACL command."""


class StoreCommandError(StoreError):
    """The server rejected a command (e.g. an ACL rule it does not accept)."""


class StoreSlotMoved(StoreCommandError):
    """A cluster node does not serve the key's slot now (MOVED, ASK, TRYAGAIN, CLUSTERDOWN); `redirect` is the
    host:port a MOVED or ASK named (None: ask the topology again)."""

    def __init__(self, message: str, endpoint: str, redirect: str | None = None) -> None:
        super().__init__(message, endpoint)
        self.redirect = redirect


@dataclass(frozen=True)
class ServerInfo:
    engine: str  # "valkey" or "redis"
    version: tuple[int, int, int]
    version_string: str
    acl: bool

    @property
    def supported(self) -> bool:
        minimum = MINIMUM_VERSIONS.get(self.engine)
        return self.acl and minimum is not None and self.version >= minimum

    def __str__(self) -> str:
        return f"{self.engine} {self.version_string}"


class AclChange(enum.Enum):
    """What `set_user` found: no user, a user with other rules (drift or a new spec), or the same rules."""

    CREATED = "created"
    CHANGED = "changed"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Usage:
    """A tenant's data keys and their memory (`RedisAdmin.usage`); `sampled` when extrapolated from a sample."""

    keys: int
    bytes: int
    sampled: bool


#: what `RedisAdmin.survey` counts per prefix
SURVEY_COUNTS: Final = ("keys", "data_keys", "keys_without_ttl", "streams_with_old_content", "plaintext_values")


@dataclass(frozen=True)
class SurveyScope:
    """What the survey of one tenant's prefix looks for: its shared area (the library's plain bookkeeping lives
    there), the retention cutoff in epoch ms (None: no retention in force) and whether values must be sealed."""

    shared: str
    cutoff_ms: int | None
    encrypted: bool


def _common_prefix(prefixes: Iterable[str]) -> str:
    """The longest prefix every one of `prefixes` starts with (what one SCAN MATCH can narrow the walk to)."""
    ordered = sorted(prefixes)
    first, last = ordered[0], ordered[-1]
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def _owner(key: bytes, owners: Mapping[bytes, str]) -> str | None:
    """The prefix of `owners` that `key` is under, trying it cut after each of its colons, longest first."""
    at = len(key)
    while (at := key.rfind(b":", 0, at)) >= 0:
        owner = owners.get(key[: at + 1])
        if owner is not None:
            return owner
    return None


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:  # a shorter value tells nothing, and replacing it would garble the message
            text = text.replace(secret, "<redacted>")
    return text


def _execute(client: redis.Redis | Pipeline, *args: str) -> object:
    """A raw command: split arguments ("ACL", "GETUSER") keep redis-py's reply parsing out of the way."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _pairs(flat: Any) -> dict[str, Any]:
    """A RESP2 flat key/value list (or a RESP3 map) as a dict with text keys and text scalar values."""
    items = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2], strict=True)
    return {as_text(k): as_text(v) if isinstance(v, bytes) else v for k, v in items}


def _chunks(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


#: HSCAN steps `usage` takes beyond the first when a page falls short of its sample
_MORE_PAGES: Final = 4


def _fingerprint(value: object) -> str:
    """A digest of SETUSER arguments or a normalized GETUSER: kept per user instead of the rules (or a hash)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _as_int(reply: object) -> int:
    """A counter or MEMORY USAGE reply; None (no such key or field) and garbage an agent wrote count as 0."""
    try:
        return int(cast(Any, reply))
    except (TypeError, ValueError):
        return 0


def _as_map(reply: object) -> dict[str, object]:
    if isinstance(reply, Mapping):
        return {as_text(k): v for k, v in reply.items()}
    if isinstance(reply, list | tuple):  # RESP2: a flat list of alternating field names and values
        return {as_text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}
    raise TypeError(f"unexpected ACL GETUSER reply of type {type(reply).__name__}")


def _normalize_fields(fields: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in fields.items():
        if key == "selectors":
            items = value if isinstance(value, list | tuple) else []
            out[key] = [_normalize_fields(_as_map(s)) for s in items]
        elif isinstance(value, list | tuple):  # flags, passwords: sets in all but form
            out[key] = sorted(as_text(v) for v in value)
        elif key in ("keys", "channels"):  # space-separated patterns, any order grants the same
            out[key] = " ".join(sorted(as_text(value).split()))
        else:  # commands: rules apply left to right, so their order is meaning
            out[key] = as_text(value)
    return out


def normalize_getuser(reply: object) -> dict[str, object] | None:
    """`ACL GETUSER` (RESP2 list or RESP3 map, bytes or str) as a comparable dict; None for no such user.

    Nothing meaningful is removed: two normalized replies are equal exactly when the users' rules are.
    """
    if reply is None:
        return None
    return _normalize_fields(_as_map(reply))


class RedisAdmin:
    """A pooled, thread-safe admin connection to one store (`redis://` or `rediss://` URL, database 0).

    Timeouts bound every call: `connect_timeout` (default `timeout`) to connect, `timeout` per reply, and at
    most one immediate retry (a pooled connection the server closed while idle) -- an unreachable store
    fails in about twice the timeout, never hangs a reconcile.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str,
        password: str,
        ca_pem: bytes | None = None,
        ca_path: Path | None = None,
        timeout: float = 5.0,
        connect_timeout: float | None = None,
        max_connections: int = 8,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("store URL must look like redis://host:port or rediss://host:port")
        if parts.username or parts.password:
            raise ValueError("store URL must not carry credentials: they belong in the admin Secret")
        if parts.path not in ("", "/", "/0"):
            # Tenants cannot SELECT (denied), so their data and our sweeps must both be in database 0.
            raise ValueError("store URL must use database 0 (tenant users cannot SELECT another one)")
        tls = parts.scheme == "rediss"
        if (ca_pem is not None or ca_path is not None) and not tls:
            raise ValueError("a TLS CA was given for a redis:// URL; use rediss://")
        host, port = parts.hostname, parts.port or 6379
        self._tls = tls
        self.endpoint = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._username = username
        self._password = password
        options: dict[str, object] = {}
        if tls:
            options = {
                "connection_class": redis.SSLConnection,
                "ssl_ca_data": ca_pem.decode() if ca_pem is not None else None,
                "ssl_ca_certs": str(ca_path) if ca_path is not None else None,
            }
        # Blocking: a burst of concurrent reconciles waits (up to `timeout`) for a connection instead of failing.
        self._pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
            timeout=timeout,
            host=host,
            port=port,
            username=username,
            password=password,
            socket_timeout=timeout,
            socket_connect_timeout=connect_timeout if connect_timeout is not None else timeout,
            # One immediate retry for a connection the server closed while idle; a timeout is not retried, so a
            # hung store costs one `timeout` per call, not two.
            retry=Retry(NoBackoff(), retries=1, supported_errors=(redis.ConnectionError,)),
            max_connections=max_connections,
            **options,
        )
        self._client = redis.Redis(connection_pool=self._pool)
        #: user -> (digest of the SETUSER arguments, digest of GETUSER after them): what `set_user` last converged
        self._applied: dict[str, tuple[str, str]] = {}

    def __repr__(self) -> str:
        return f"RedisAdmin({self.endpoint!r})"  # the username is a Secret's value too: never shown

    @contextmanager
    def _translate(self, action: str, secrets: Sequence[str] = ()) -> Iterator[None]:
        """Turn redis-py errors into ours, naming the endpoint and `action`, redacting `secrets`."""
        # Both admin credentials come from a Secret: neither is ever quoted, whatever the server echoes.
        hide = (self._password, self._username, *secrets)
        try:
            yield
        except redis.AuthenticationError as exc:  # before ConnectionError: it is a subclass
            raise StoreAuthFailed(
                f"{self.endpoint} refused the admin credentials while {action}: {_redact(str(exc), hide)}",
                self.endpoint,
            ) from None
        except NoPermissionError as exc:  # before ResponseError: it is a subclass
            raise StoreAuthFailed(
                f"the admin user lacks a permission on {self.endpoint} for {action}: {_redact(str(exc), hide)}",
                self.endpoint,
            ) from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            reason = f"{type(exc).__name__}: {_redact(str(exc), hide)}"
            raise StoreUnavailable(f"{self.endpoint} unavailable while {action}: {reason}", self.endpoint) from None
        except (redis.exceptions.AskError, redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError) as exc:
            redirect = f"{exc.host}:{exc.port}" if isinstance(exc, redis.exceptions.AskError) else None
            raise StoreSlotMoved(
                f"{self.endpoint} does not serve that slot now ({action}): {_redact(str(exc), hide)}",
                self.endpoint,
                redirect,
            ) from None
        except redis.RedisError as exc:
            raise StoreCommandError(
                f"{self.endpoint} rejected {action}: {_redact(str(exc), hide)}", self.endpoint
            ) from None

    # -- server facts -------------------------------------------------------------------------------------

    def server_info(self) -> ServerInfo:
        """Engine and version from INFO server; Valkey also reports a `redis_version` (7.2.4) for clients."""
        with self._translate("reading INFO server"):
            info = self._client.info("server")
            try:
                _execute(self._client, "ACL", "WHOAMI")
                acl = True
            except NoPermissionError:
                raise  # the command exists but the admin may not use it: an auth problem
            except redis.ResponseError:  # unknown command: no ACLs on this server
                acl = False
        valkey = "valkey_version" in info or as_text(info.get("server_name", "")) == "valkey"
        engine = "valkey" if valkey else "redis"
        version_string = as_text(info.get("valkey_version" if valkey else "redis_version", ""))
        match = _VERSION.match(version_string)
        version = (int(match[1]), int(match[2]), int(match[3])) if match else (0, 0, 0)
        return ServerInfo(engine=engine, version=version, version_string=version_string, acl=acl)

    def capabilities(self) -> ServerCapabilities:
        """What the ACL builder needs to know about this server; raises StoreUnsupported for old servers."""
        info = self.server_info()
        if not info.supported:
            raise StoreUnsupported(
                f"{self.endpoint} runs {info}{'' if info.acl else ' without ACL'}; "
                "supported: Redis >= 7.0 or Valkey >= 8.0 with ACLs",
                self.endpoint,
            )
        with self._translate("listing commands"):
            names = self._client.command_list()
        return ServerCapabilities(
            engine=info.engine, version=info.version, commands=frozenset(as_text(n).lower() for n in names)
        )

    def cluster_enabled(self) -> bool:
        """Whether the server runs in cluster mode (INFO cluster: cluster_enabled)."""
        with self._translate("reading INFO cluster"):
            info = self._client.info("cluster")
        return str(info.get("cluster_enabled", "0")) == "1"

    def cluster_shards(self) -> list[dict[str, Any]]:
        """CLUSTER SHARDS as plain dicts: per shard `slots` [(start, end), ...] and `nodes`, each with its `address`
        (endpoint or ip, and the port clients use: `tls-port` on TLS), `role` and `health`."""
        with self._translate("reading CLUSTER SHARDS"):
            reply = cast(list[Any], _execute(self._client, "CLUSTER", "SHARDS"))
        shards: list[dict[str, Any]] = []
        for entry in reply:
            shard = _pairs(entry)
            bounds = [int(n) for n in shard.get("slots", [])]
            nodes = []
            for raw in shard.get("nodes", []):
                node = _pairs(raw)
                host = node.get("endpoint") or node.get("ip") or ""
                if host in ("", "?"):
                    host = node.get("ip") or ""
                port = node.get("tls-port") if self._tls and node.get("tls-port") else node.get("port")
                address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                nodes.append({"address": address, "role": node.get("role", ""), "health": node.get("health", "")})
            shards.append({"slots": list(zip(bounds[::2], bounds[1::2], strict=True)), "nodes": nodes})
        return shards

    # -- ACL users ----------------------------------------------------------------------------------------

    def get_user(self, name: str) -> dict[str, object] | None:
        """The user's rules as `normalize_getuser` shapes them; None when there is no such user."""
        with self._translate(f"reading ACL user {name!r}"):
            reply = _execute(self._client, "ACL", "GETUSER", name)
        return normalize_getuser(reply)

    def set_user(self, user: AclUser, password: str, caps: ServerCapabilities | None) -> AclChange:
        """Converge `user` to its rules and `password` (sent hashed); report what it was before.

        A user this connection set to the same rules before is only read: one GETUSER, compared with what the
        server showed after that SETUSER (the server rewrites rules -- categories, order -- so the plan itself is
        not comparable), and nothing is written while they agree. Otherwise (first pass of this process, drift, a
        new spec) GETUSER, SETUSER reset and GETUSER run in one MULTI/EXEC, so "before" is exactly what SETUSER
        replaced: a different "before" means the rules had drifted (or the desired ones changed).
        """
        digest = hash_password(password)
        args = setuser_args(user, digest, caps)
        planned = _fingerprint(args)
        known = self._applied.get(user.name)
        if known is not None and known[0] == planned:
            with self._translate(f"reading ACL user {user.name!r}", secrets=(password, digest)):
                reply = _execute(self._client, "ACL", "GETUSER", user.name)
            if _fingerprint(normalize_getuser(reply)) == known[1]:
                return AclChange.UNCHANGED
        with self._translate(f"setting ACL user {user.name!r}", secrets=(password, digest)):
            with self._client.pipeline(transaction=True) as pipe:
                _execute(pipe, "ACL", "GETUSER", user.name)
                _execute(pipe, "ACL", "SETUSER", user.name, *args)
                _execute(pipe, "ACL", "GETUSER", user.name)
                before, result, after = pipe.execute(raise_on_error=False)
            for reply in (before, result, after):
                if isinstance(reply, Exception):
                    raise reply
        now = normalize_getuser(after)
        self._applied[user.name] = (planned, _fingerprint(now))
        old = normalize_getuser(before)
        if old is None:
            return AclChange.CREATED
        return AclChange.UNCHANGED if old == now else AclChange.CHANGED

    def users_under(self, base: str) -> list[str]:
        """ACL users named `base` or `base_<anything>` (a tenant's user and its agents' users), from ACL USERS.

        Kubernetes names contain no `_`, so `mt_<ns>_<tenant>_` can only ever start users of that one tenant.
        """
        if not base:
            raise ValueError("an empty base would match every user")
        with self._translate("listing ACL users"):
            names = cast(list[object], _execute(self._client, "ACL", "USERS"))
        return sorted(n for n in map(as_text, names) if n == base or n.startswith(base + "_"))

    def delete_users(self, names: Iterable[str]) -> int:
        """Delete ACL users (the server also disconnects their clients); returns how many existed."""
        doomed = sorted(set(names))
        if self._username in doomed:
            raise ValueError("refusing to delete the admin user")
        if not doomed:
            return 0
        for name in doomed:
            self._applied.pop(name, None)
        with self._translate(f"deleting ACL users {', '.join(doomed)}"):
            return cast(int, _execute(self._client, "ACL", "DELUSER", *doomed))

    # -- key space ----------------------------------------------------------------------------------------

    def _scan(self, prefix: str, count: int) -> Iterator[bytes]:
        if not prefix:
            raise ValueError("an empty prefix would match every key")
        raw = prefix.encode()
        for key in self._client.scan_iter(match=glob_escape(prefix) + "*", count=count):
            # SCAN MATCH is a glob; the literal check makes a mistake in escaping unable to reach other keys.
            if isinstance(key, bytes) and key.startswith(raw):
                yield key

    def scan_delete(self, prefix: str, batch: int = 500) -> int:
        """UNLINK every key under `prefix`, SCANning in steps of `batch` (never KEYS); returns how many."""
        deleted = 0
        with self._translate(f"deleting keys under {prefix!r}"):
            for chunk in _chunks(self._scan(prefix, batch), batch):
                deleted += int(self._client.unlink(*chunk))
        return deleted

    def usage(self, prefix: str, sample: int = 200) -> Usage:
        """The tenant's data keys and their bytes from what its own writes maintain, checked on a bounded sample:
        O(sample) commands per tenant whatever else the store holds (never a SCAN; BENCHMARKS.md, steady state).

        Keys: the library's size index `S sizes` (HLEN), which holds exactly the keys
        `memory_client.contract.counts_toward_key_quota` counts, so status and the library's quota check agree.
        Up to `sample` indexed keys (the first HSCAN returns: all of them when there are no more; the pick is the
        hash table's order, so the same index gives the same figures pass after pass and status does not move
        while nothing changed) are checked with MEMORY USAGE; an indexed key that is gone (expired before the
        retention job forgot it) or outside the prefix is not counted, so beyond `sample` the count is HLEN scaled
        by the live share of the sample. Bytes: the memory
        of the sampled keys (a shared context's access log with its context) and of the bookkeeping hashes
        `usage`, `sizes`, `activity`; beyond `sample`, the library's byte counter scaled by the sample's memory
        per byte recorded (`sampled`). Keys written around the library are not indexed, so not counted here: the
        hourly survey (`survey`) sees them. Subject index sets are left out (key names only, no content).
        """
        if not prefix:
            raise ValueError("an empty prefix would match every key")
        shared = contract.shared_prefix(prefix)
        index = f"{shared}{contract.SIZES}"
        books = (f"{shared}{contract.USAGE}", index, f"{shared}{contract.ACTIVITY}")
        raw = prefix.encode()
        with self._translate(f"measuring keys under {prefix!r}"):
            with self._client.pipeline(transaction=False) as pipe:
                pipe.hlen(index)
                pipe.hget(books[0], "bytes")
                pipe.hscan(index, 0, count=sample)
                for book in books:
                    pipe.memory_usage(book)
                indexed, counted, (cursor, page), *book_sizes = pipe.execute()
            picked = dict(cast(dict[bytes, bytes], page))
            for _ in range(_MORE_PAGES):  # COUNT is a hint: a sparse table may need a few more steps
                if not cursor or len(picked) >= sample:
                    break
                cursor, page = self._client.hscan(index, cursor, count=sample)
                picked.update(cast(dict[bytes, bytes], page))
            drawn = [(key, _as_int(size)) for key, size in list(picked.items())[:sample]]
            # An index entry outside the prefix is an agent's forgery, not a key of this tenant to measure.
            ours = [as_text(key) for key, _ in drawn if key.startswith(raw)]
            with self._client.pipeline(transaction=False) as pipe:
                for name in ours:
                    pipe.memory_usage(name)
                    if contract.is_context(name, shared):
                        pipe.memory_usage(contract.context_log(name))
                measured = pipe.execute() if ours else []
        live = memory = at = 0
        for name in ours:
            size = measured[at]
            at += 1
            if contract.is_context(name, shared):
                memory += _as_int(measured[at])
                at += 1
            if size is not None:  # None: the key is gone, its index entry not yet forgotten
                live += 1
                memory += int(size)
        bookkeeping = sum(_as_int(s) for s in book_sizes)
        total, drawn_count = int(indexed), len(drawn)
        if drawn_count >= total or not drawn_count:
            return Usage(keys=live, bytes=memory + bookkeeping, sampled=False)
        recorded = sum(r for _, r in drawn)
        written = _as_int(counted)
        if recorded > 0 and written > 0:
            data = round(written * memory / recorded)
        else:  # counters the library did not keep (or an agent reset): the sample's mean per key
            data = round(total * memory / drawn_count)
        return Usage(keys=round(total * live / drawn_count), bytes=data + bookkeeping, sampled=True)

    def survey(self, scopes: Mapping[str, SurveyScope], batch: int = 500) -> dict[str, dict[str, int]]:
        """Evidence over every key under each prefix of `scopes`, whoever wrote it (SCAN: only the admin may), in
        one pass over the keyspace: per prefix, its data keys (as the key quota counts them, indexed by the library
        or not), keys without a TTL (when the scope's `cutoff_ms`, a retention, is in force), streams holding
        entries older than `cutoff_ms`, and values that are not envelopes where `encrypted` (a stream's newest
        entry, a string, a hash's `d` field; anything else outside the library's plain bookkeeping under the
        scope's `shared` counts as plaintext). Every prefix of `scopes` gets its counts, zeros included.

        Cost: SCAN MATCH visits the whole keyspace, not the prefixes, whatever their number; so a store surveys all
        of its tenants for the price of one walk (BENCHMARKS.md, steady state). A key belongs to the longest of
        the prefixes that ends at one of its colons."""
        results = {prefix: dict.fromkeys(SURVEY_COUNTS, 0) for prefix in scopes}
        if not scopes:
            return results
        owners = {prefix.encode(): prefix for prefix in scopes}
        with self._translate(f"surveying keys under {len(scopes)} prefix(es)"):
            for chunk in _chunks(self._scan(_common_prefix(scopes), batch), batch):
                owned = [(key, owner) for key in chunk if (owner := _owner(key, owners)) is not None]
                with self._client.pipeline(transaction=False) as pipe:
                    for key, _ in owned:
                        pipe.type(key)
                        pipe.pttl(key)
                    facts = pipe.execute() if owned else []
                probes: list[tuple[str, bool, str]] = []  # what was asked per key, if it must be sealed, whose
                with self._client.pipeline(transaction=False) as pipe:
                    for i, (key, owner) in enumerate(owned):
                        kind, ttl = as_text(facts[2 * i]), facts[2 * i + 1]
                        if kind == "none":
                            continue
                        scope, counts = scopes[owner], results[owner]
                        counts["keys"] += 1
                        if scope.cutoff_ms is not None and ttl == -1:
                            counts["keys_without_ttl"] += 1
                        plain = plain_by_design(as_text(key), scope.shared)
                        counts["data_keys"] += not plain  # as the key quota counts (contract.counts_toward_key_quota)
                        sealed = scope.encrypted and not plain
                        if kind == "stream" and (scope.cutoff_ms is not None or sealed):
                            pipe.xrange(key, count=1)
                            pipe.xrevrange(key, count=1)
                            probes.append(("stream", sealed, owner))
                        elif sealed and kind == "string":
                            pipe.getrange(key, 0, 0)
                            probes.append(("string", sealed, owner))
                        elif sealed and kind == "hash":
                            pipe.hget(key, CONTEXT_DOCUMENT_FIELD)
                            probes.append(("hash", sealed, owner))
                        elif sealed:
                            counts["plaintext_values"] += 1  # the library writes no other type
                    replies = pipe.execute() if probes else []
                at = 0
                for what, sealed, owner in probes:
                    scope, counts = scopes[owner], results[owner]
                    if what == "stream":
                        oldest, newest = replies[at], replies[at + 1]
                        at += 2
                        cutoff = scope.cutoff_ms
                        if cutoff is not None and oldest and int(as_text(oldest[0][0]).split("-")[0]) < cutoff:
                            counts["streams_with_old_content"] += 1
                        if sealed and newest and not all(map(is_sealed, newest[0][1].values())):
                            counts["plaintext_values"] += 1
                    else:
                        value = replies[at]
                        at += 1
                        if not isinstance(value, bytes) or not is_sealed(value):
                            counts["plaintext_values"] += 1
        return results

    # -- lifecycle ----------------------------------------------------------------------------------------

    def read_hash(self, key: str) -> dict[str, str]:
        """A hash as text (job results the tenant's jobs recorded); empty when absent."""
        with self._translate(f"reading {key!r}"):
            raw = self._client.hgetall(key)
        return {as_text(k): as_text(v) for k, v in raw.items()}

    def append_audit(self, key: str, fields: dict[str, str], attempts: int = 10) -> None:
        """Append one event to a tenant's hash-chained audit stream, linked to its current head exactly as the
        agent library links its own (WATCH the stream, read the head, MULTI XADD EXEC; retry if it moved)."""
        with self._translate(f"appending to {key!r}"):
            for _ in range(attempts):
                with self._client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(key)  # type: ignore[no-untyped-call]
                        head = cast(list[tuple[Any, dict[Any, Any]]], pipe.xrevrange(key, count=1))
                        last = {as_text(k): as_text(v) for k, v in head[0][1].items()} if head else {}
                        prev = last.get("h", "")
                        linked = {**fields, "prev": prev or GENESIS, "h": chain_hash(prev or GENESIS, fields)}
                        pipe.multi()
                        pipe.xadd(key, cast(Any, linked))
                        pipe.execute()
                        return
                    except redis.WatchError:
                        continue  # an agent appended meanwhile: link to the new head
            raise redis.WatchError(f"the audit stream {key!r} kept moving")

    # -- the audit trail and its seal ---------------------------------------------------------------------

    def read_trail(self, stream: str, seal: str) -> tuple[dict[str, str], int, TrailInfo | None]:
        """In one round trip: the stored seal (empty when none), the server's clock in ms, and XINFO STREAM of
        the trail (None when it does not exist)."""
        with self._translate(f"reading the audit trail {stream!r}"):
            with self._client.pipeline(transaction=False) as pipe:
                pipe.hgetall(seal)
                pipe.time()
                pipe.xinfo_stream(stream)
                raw, clock, info = pipe.execute(raise_on_error=False)
            for reply in (raw, clock):
                if isinstance(reply, Exception):
                    raise reply
            if isinstance(info, redis.ResponseError) and "no such key" in str(info).lower():
                info = None
            elif isinstance(info, Exception):
                raise info
        seconds, micros = cast(tuple[int, int], clock)
        sealed = {as_text(k): as_text(v) for k, v in cast(dict[Any, Any], raw).items()}
        return sealed, int(seconds) * 1000 + int(micros) // 1000, TrailInfo.from_xinfo(info) if info else None

    def trail_info(self, stream: str) -> TrailInfo | None:
        with self._translate(f"reading {stream!r}"):
            try:
                return TrailInfo.from_xinfo(cast(dict[Any, Any], self._client.xinfo_stream(stream)))
            except redis.ResponseError as exc:
                if "no such key" in str(exc).lower():
                    return None
                raise

    def stream_entry(self, stream: str, entry_id: str) -> dict[str, str] | None:
        """One entry's fields as text, None when it is not there."""
        with self._translate(f"reading {stream!r}"):
            found = cast(list[tuple[Any, dict[Any, Any]]], self._client.xrange(stream, entry_id, entry_id))
        return {as_text(k): as_text(v) for k, v in found[0][1].items()} if found else None

    def stream_after(
        self, stream: str, after: str | None, limit: int, page: int = 1000
    ) -> Iterator[tuple[str, dict[str, str]]]:
        """Up to `limit` entries newer than `after` (all from the oldest when None), oldest first, in pages."""
        start, left = ("(" + after) if after else "-", limit
        while left > 0:
            with self._translate(f"reading {stream!r}"):
                found = cast(
                    list[tuple[Any, dict[Any, Any]]], self._client.xrange(stream, start, "+", count=min(page, left))
                )
            for entry_id, fields in found:
                yield as_text(entry_id), {as_text(k): as_text(v) for k, v in fields.items()}
            if len(found) < min(page, left):
                return
            left -= len(found)
            start = "(" + as_text(found[-1][0])

    def first_entry_from(self, stream: str, ms: int) -> str | None:
        """The id of the oldest entry at or after `ms`, None when every entry is older."""
        with self._translate(f"reading {stream!r}"):
            found = cast(list[tuple[Any, Any]], self._client.xrange(stream, f"{ms}-0", "+", count=1))
        return as_text(found[0][0]) if found else None

    def trim_stream_to(self, stream: str, first_kept: str) -> int:
        """Remove the entries older than `first_kept` (XTRIM MINID, exact); returns how many went.

        Only the admin does this: tenant users may append to their audit stream but never trim it.
        """
        with self._translate(f"trimming stream {stream!r}"):
            return int(self._client.xtrim(stream, minid=first_kept, approximate=False))

    def write_hash(self, key: str, fields: dict[str, str]) -> None:
        """Replace a hash's whole content atomically (fields absent from `fields` go)."""
        with self._translate(f"writing {key!r}"), self._client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=cast(Any, fields))
            pipe.execute()

    def close(self) -> None:
        self._pool.disconnect()

    def __enter__(self) -> RedisAdmin:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
