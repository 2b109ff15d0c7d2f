"""The contract between the operator, its jobs and this library, defined once: key names, the environment the
Secrets carry, the keyring's wire format, the envelope's marker bytes, audit and job-result names.

The operator's builders write what is defined here, the jobs and the library read it back (tests hold the three to
each other with a round trip, tests/unit/test_contract.py). Pure: the standard library only, no Redis client, so
the operator's pure layers may import it.

Key schema (P = the tenant prefix, S = P's shared area)::

    mem:{ns}:{name}:                 P: every key of the tenant's data
    P agent:{agent}:                 one agent's own area (its conversations; its ACL user's only area when strict)
    P shared:                        S: what the tenant's agents share, the library's bookkeeping included
    S usage, S sizes, S activity     bookkeeping hashes (bytes written, data key -> bytes, per-agent activity)
    S subject:{pseudonym}            the set of keys holding one subject's data
    S ctx:{name}, S ctx:{name}:log   a shared context and its access log
    audit:{ns}:{name}                the hash-chained audit trail (outside P: append and read only for tenants)
    seal:{ns}:{name}                 the operator's seal of that trail (admin writes, the jobs' user reads)
    jobs:{ns}:{name}:{job}           what the tenant's jobs record (the jobs' user writes, the operator reads)

On a Redis/Valkey Cluster each `{ns}:{name}` above is written `{<ns>:<name>}` (braces included): the hash tag
that puts every key of one tenant in one slot, so its transactions stay single-slot (`hash_tag`).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, NamedTuple

__all__ = [
    "ACTIVITY",
    "AUDIT_ACTOR",
    "CONTEXT_DOCUMENT_FIELD",
    "DAY_MS",
    "DEFAULT_WAIT_TIMEOUT_MS",
    "DRIFT_ACTION",
    "ENVELOPE_BOUND",
    "ENVELOPE_PLACED",
    "ENVELOPE_PLAIN",
    "ISOLATION_LEVELS",
    "JOB_FACTS",
    "JOB_REPORT",
    "JOB_RETENTION",
    "KEYRING_ALGORITHM",
    "KEYRING_VERSION",
    "KEY_BYTES",
    "LANGGRAPH_AREA",
    "MASKING_DETECTORS",
    "MASKING_MODES",
    "MESSAGE_FIELD",
    "SIZES",
    "SKEW_MS",
    "USAGE",
    "ContractError",
    "Env",
    "EnvelopeHeader",
    "KeyringDocument",
    "TenantEnv",
    "WireKey",
    "agent_prefix",
    "as_text",
    "audit_key",
    "check_cluster_keys",
    "context_key",
    "context_log",
    "counts_toward_key_quota",
    "envelope_header",
    "hash_tag",
    "is_context",
    "is_sealed",
    "parse_keyring",
    "plain_by_design",
    "read_env",
    "results_prefix",
    "seal_key",
    "serialize_keyring",
    "shared_prefix",
    "subject_index",
    "tenant_prefix",
]

DAY_MS: Final = 86_400_000
#: How far the clocks of writers may lie from the server's: a message's stream time from the time sealed in it,
#: an audit entry id ahead of a clock (later than this: a replay, or a far-future id).
SKEW_MS: Final = 60_000

#: `spec.isolation` of a MemoryTenant, `MEMORY_ISOLATION` in its Secrets.
ISOLATION_LEVELS: Final = ("minimal", "moderate", "strict")
#: The masking detectors a policy may name (`MEMORY_MASKING`, comma-separated), and how matches are replaced.
MASKING_DETECTORS: Final = ("email", "phone", "ssn", "payment_card", "iban", "ip_address")
MASKING_MODES: Final = ("redact", "hash")

#: The audit action the operator appends when it restores a tenant user's ACL rules (the report counts them).
DRIFT_ACTION: Final = "acl.drift_repaired"
#: Who the operator's own audit events name.
AUDIT_ACTOR: Final = "agent-memory-operator"


class ContractError(ValueError):
    """Something read does not follow the contract: the message names the variable or field, never a secret."""


def as_text(value: object) -> str:
    """A reply or stored name as text (RESP2 replies are bytes; bytes that are not UTF-8 are replaced, not fatal)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


# -- key schema ---------------------------------------------------------------------------------------------

#: The shared area's bookkeeping hashes, by name under S.
USAGE: Final = "usage"
SIZES: Final = "sizes"
ACTIVITY: Final = "activity"
#: Where in an area (A or S) the LangGraph adapters (memory_client.langgraph) keep their keys: A lg:..., S lg:...
LANGGRAPH_AREA: Final = ":lg:"
_SUBJECTS: Final = "subject:"
_CONTEXTS: Final = "ctx:"
_LOG: Final = ":log"

#: The jobs, as named in `jobs:{ns}:{name}:{job}`; `facts` is the operator's survey the report job merges.
JOB_RETENTION: Final = "retention"
JOB_REPORT: Final = "report"
JOB_FACTS: Final = "facts"

#: A conversation entry's field holding the envelope; a shared context's hash field holding its envelope.
MESSAGE_FIELD: Final = "m"
CONTEXT_DOCUMENT_FIELD: Final = "d"


def _tenant_tag(namespace: str, name: str, cluster: bool) -> str:
    # On a cluster every key of a tenant carries one hash tag, so all of them are in one slot (one node) and the
    # library's transactions (data, index and audit event together) stay single-slot. See `hash_tag`.
    return f"{{{namespace}:{name}}}" if cluster else f"{namespace}:{name}"


def tenant_prefix(namespace: str, name: str, *, cluster: bool = False) -> str:
    """P: `mem:{ns}:{name}:`, or on a cluster `mem:{<ns>:<name>}:` (the braces are the hash tag)."""
    return f"mem:{_tenant_tag(namespace, name, cluster)}:"


def agent_prefix(prefix: str, agent: str) -> str:
    """An agent's own area under the tenant prefix `prefix`."""
    return f"{prefix}agent:{agent}:"


def shared_prefix(prefix: str) -> str:
    """The shared area under the tenant prefix `prefix`."""
    return f"{prefix}shared:"


def audit_key(namespace: str, name: str, *, cluster: bool = False) -> str:
    return f"audit:{_tenant_tag(namespace, name, cluster)}"


def seal_key(namespace: str, name: str, *, cluster: bool = False) -> str:
    return f"seal:{_tenant_tag(namespace, name, cluster)}"


def results_prefix(namespace: str, name: str, *, cluster: bool = False) -> str:
    return f"jobs:{_tenant_tag(namespace, name, cluster)}:"


def hash_tag(key: str) -> str | None:
    """The part of `key` Redis Cluster hashes to pick its slot when it is not the whole key: what lies between
    the first "{" and the next "}", if that is not empty (the cluster specification's rule). None otherwise."""
    start = key.find("{")
    if start == -1:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1 : end]


def subject_index(shared: str, pseudonym: str) -> str:
    return f"{shared}{_SUBJECTS}{pseudonym}"


def context_key(shared: str, name: str) -> str:
    return f"{shared}{_CONTEXTS}{name}"


def is_context(key: str, shared: str) -> bool:
    return key.startswith(f"{shared}{_CONTEXTS}") and not key.endswith(_LOG)


def context_log(context: str) -> str:
    return f"{context}{_LOG}"


def plain_by_design(key: str, shared: str) -> bool:
    """The library's bookkeeping keys, never encrypted: counters, the size index, activity, subject index sets and
    shared-context access logs (names and counts, no content). Everything else it writes is an envelope."""
    if key in (f"{shared}{USAGE}", f"{shared}{SIZES}", f"{shared}{ACTIVITY}"):
        return True
    if key.startswith(f"{shared}{_SUBJECTS}"):
        return True
    return key.startswith(f"{shared}{_CONTEXTS}") and key.endswith(_LOG)


def counts_toward_key_quota(key: str, shared: str) -> bool:
    """`spec.quota.keys` counts data keys (conversations, summaries, shared contexts, and anything else written
    under the prefix), never the bookkeeping that comes with them: the library checks it against the size index
    (which holds exactly its data keys), the operator counts the keys under the prefix this way."""
    return not plain_by_design(key, shared)


# -- envelopes ----------------------------------------------------------------------------------------------

#: The first byte of a stored value: plain, format 1 (bound to its key) and format 2 (bound to key and place).
ENVELOPE_PLAIN: Final = 0x00
ENVELOPE_BOUND: Final = 0x01
ENVELOPE_PLACED: Final = 0x02
_SEALED: Final = (bytes((ENVELOPE_BOUND,)), bytes((ENVELOPE_PLACED,)))


def is_sealed(value: bytes) -> bool:
    """Whether a stored value is an envelope (format 1 or 2) rather than plain: the one test for evidence checks."""
    return value[:1] in _SEALED


class EnvelopeHeader(NamedTuple):
    """What a stored value says about itself before its sealed part: the format, the key id it was sealed with and
    the place it was sealed for ("" and b"" where the format has none), and where the nonce (or the plain bytes)
    starts. Format 2: ``0x02 | len(key id) | key id | len(place) | place | nonce | ciphertext``; format 1:
    ``0x01 | len(key id) | key id | nonce | ciphertext``; plain: ``0x00 | bytes``."""

    format: int
    key_id: str
    place: bytes
    body: int


def envelope_header(value: bytes) -> EnvelopeHeader:
    """The one parser of an envelope's header; ContractError when the value is empty, of an unknown format or cut
    short inside its header (the sealed part is the cipher's to judge)."""
    if not value:
        raise ContractError("the value is empty")
    kind = value[0]
    if kind == ENVELOPE_PLAIN:
        return EnvelopeHeader(kind, "", b"", 1)
    if kind not in (ENVELOPE_BOUND, ENVELOPE_PLACED) or len(value) < 2:
        raise ContractError("the value has an unknown format")
    end = 2 + value[1]
    if len(value) < end:
        raise ContractError("the value is truncated inside its key id")
    key_id = value[2:end].decode(errors="replace")
    if kind == ENVELOPE_BOUND:
        return EnvelopeHeader(kind, key_id, b"", end)
    if len(value) <= end:
        raise ContractError("the value is truncated")
    size = value[end]
    return EnvelopeHeader(kind, key_id, value[end + 1 : end + 1 + size], end + 1 + size)


# -- the keyring's wire format ------------------------------------------------------------------------------

KEYRING_VERSION: Final = 1
KEYRING_ALGORITHM: Final = "AES-256-GCM"
KEY_BYTES: Final = 32
_MAX_KEY_ID_BYTES: Final = 255  # an envelope carries its key id after a one-byte length


@dataclass(frozen=True)
class WireKey:
    """One key of the keyring as stored: `material` is raw bytes (base64 in JSON)."""

    id: str
    material: bytes = field(repr=False)
    algorithm: str = KEYRING_ALGORITHM
    created_at: datetime | None = None


@dataclass(frozen=True)
class KeyringDocument:
    """The keyring JSON under the keys Secret's `MEMORY_KEYRING`::

        {"version": 1, "active": "k1", "keys": [{"id": "k1", "algorithm": "AES-256-GCM", "key": "<base64>",
         "createdAt": "2026-01-01T00:00:00Z"}], "pseudonym": "<base64 of 32 bytes>"}

    `pseudonym` is the HMAC key of subject pseudonyms, apart from the AES keys so it outlives their rotation;
    keyrings minted before it have none. Keys of another algorithm are carried (a later version may add some) but
    never active and never used by this version.
    """

    active: str
    keys: tuple[WireKey, ...]
    pseudonym: bytes | None = field(default=None, repr=False)


def _created(raw: object) -> datetime | None:
    if raw in (None, ""):
        return None
    return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))


def parse_keyring(text: str | bytes) -> KeyringDocument:
    """The one parser of the keyring JSON; ContractError (never echoing key material) when it is not its shape."""
    try:
        doc = json.loads(text)
        keys = tuple(
            WireKey(
                id=str(k["id"]),
                material=base64.b64decode(k["key"], validate=True),
                algorithm=str(k.get("algorithm", KEYRING_ALGORITHM)),
                created_at=_created(k.get("createdAt")),
            )
            for k in doc["keys"]
        )
        raw = doc.get("pseudonym")
        pseudonym = base64.b64decode(raw, validate=True) if raw is not None else None
        ring = KeyringDocument(active=str(doc["active"]), keys=keys, pseudonym=pseudonym)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise ContractError(f"keyring is not valid JSON of the documented shape ({type(exc).__name__})") from None
    if any(not k.id or len(k.id.encode()) > _MAX_KEY_ID_BYTES for k in keys):
        raise ContractError(f"keyring holds a key id that is empty or longer than {_MAX_KEY_ID_BYTES} bytes")
    if len({k.id for k in keys}) != len(keys):
        raise ContractError("keyring holds two keys with the same id")
    if any(len(k.material) != KEY_BYTES for k in keys if k.algorithm == KEYRING_ALGORITHM):
        raise ContractError("keyring holds a key that is not 256 bits")
    if pseudonym is not None and len(pseudonym) != KEY_BYTES:
        raise ContractError("keyring's pseudonym key is not 256 bits")
    if not any(k.id == ring.active and k.algorithm == KEYRING_ALGORITHM for k in keys):
        raise ContractError(f"keyring's active key {ring.active!r} is not among its {KEYRING_ALGORITHM} keys")
    return ring


def serialize_keyring(ring: KeyringDocument) -> str:
    """The keyring JSON, canonical (sorted keys, compact): the same keyring always gives the same text."""
    keys = []
    for key in ring.keys:
        entry = {"id": key.id, "algorithm": key.algorithm, "key": base64.b64encode(key.material).decode()}
        if key.created_at is not None:
            entry["createdAt"] = key.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        keys.append(entry)
    doc: dict[str, object] = {"version": KEYRING_VERSION, "active": ring.active, "keys": keys}
    if ring.pseudonym is not None:
        doc["pseudonym"] = base64.b64encode(ring.pseudonym).decode()
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


# -- the environment the Secrets carry ----------------------------------------------------------------------


class Env:
    """The variables of the credentials, keys and job-credentials Secrets (an agent's or a job's `envFrom`)."""

    REDIS_URL: Final = "REDIS_URL"  # carries the user and password
    REDIS_HOST: Final = "REDIS_HOST"
    REDIS_PORT: Final = "REDIS_PORT"
    REDIS_TLS: Final = "REDIS_TLS"
    REDIS_USERNAME: Final = "REDIS_USERNAME"
    REDIS_PASSWORD: Final = "REDIS_PASSWORD"  # noqa: S105 - a variable's name
    TENANT_ID: Final = "MEMORY_TENANT_ID"  # <namespace>/<name>
    KEY_PREFIX: Final = "MEMORY_KEY_PREFIX"
    AGENT_ID: Final = "MEMORY_AGENT_ID"
    AGENT_PREFIX: Final = "MEMORY_AGENT_PREFIX"
    SHARED_PREFIX: Final = "MEMORY_SHARED_PREFIX"
    ISOLATION: Final = "MEMORY_ISOLATION"
    ENCRYPTION: Final = "MEMORY_ENCRYPTION"  # required | disabled
    KEYS_SECRET: Final = "MEMORY_KEYS_SECRET"  # noqa: S105 - the keys Secret's name, for agents that mount it
    KEYRING: Final = "MEMORY_KEYRING"  # the keys Secret's one key: the keyring JSON
    KEYRING_FILE: Final = "MEMORY_KEYRING_FILE"  # set by whoever mounts the keys Secret as a file
    AUDIT_KEY: Final = "MEMORY_AUDIT_KEY"
    ACCESS_LOGGING: Final = "MEMORY_ACCESS_LOGGING"
    MASKING: Final = "MEMORY_MASKING"
    MASKING_MODE: Final = "MEMORY_MASKING_MODE"
    FRAMEWORKS: Final = "MEMORY_FRAMEWORKS"
    RETENTION_DAYS: Final = "MEMORY_RETENTION_DAYS"
    AUDIT_RETENTION_DAYS: Final = "MEMORY_AUDIT_RETENTION_DAYS"
    QUOTA_KEYS: Final = "MEMORY_QUOTA_KEYS"
    QUOTA_BYTES: Final = "MEMORY_QUOTA_BYTES"
    SEAL_KEY: Final = "MEMORY_SEAL_KEY"  # job credentials only
    RESULTS_PREFIX: Final = "MEMORY_RESULTS_PREFIX"  # job credentials only
    LEGACY_ENVELOPES: Final = "MEMORY_LEGACY_ENVELOPES"  # not written by the operator: an agent's own choice
    # The store is a Redis/Valkey Cluster: host:port of its nodes, comma-separated (REDIS_URL names one of them).
    CLUSTER_NODES: Final = "MEMORY_CLUSTER_NODES"
    # Durability: an acknowledged write has reached this many replicas (WAIT), within the timeout (milliseconds).
    WAIT_REPLICAS: Final = "MEMORY_WAIT_REPLICAS"
    WAIT_TIMEOUT_MS: Final = "MEMORY_WAIT_TIMEOUT_MS"

    ENCRYPTION_REQUIRED: Final = "required"
    ENCRYPTION_DISABLED: Final = "disabled"


#: How long a write waits for its replicas unless MEMORY_WAIT_TIMEOUT_MS says otherwise.
DEFAULT_WAIT_TIMEOUT_MS: Final = 1000

_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off")


@dataclass(frozen=True)
class TenantEnv:
    """The environment a Secret gives, read and checked once; the library's `MemoryConfig` and the jobs' `JobEnv`
    are built from it. Defaults are the contract's (the shared area, the audit and seal keys of the tenant)."""

    redis_url: str = field(repr=False)
    tenant_id: str
    key_prefix: str
    shared_prefix: str
    audit_key: str
    seal_key: str
    isolation: str = "moderate"
    agent_id: str | None = None
    agent_prefix: str | None = None
    username: str | None = None
    encryption_required: bool = True
    keyring: str | None = field(default=None, repr=False)  # MEMORY_KEYRING, unparsed
    keyring_file: str | None = None
    retention_days: int | None = None
    audit_retention_days: int | None = None
    quota_keys: int | None = None
    quota_bytes: int | None = None
    masking: tuple[str, ...] = ()
    masking_mode: str = "redact"
    access_logging: bool = True
    legacy_envelopes: bool = True
    frameworks: tuple[str, ...] = ()
    results_prefix: str | None = None
    cluster_nodes: tuple[str, ...] = ()
    wait_replicas: int = 0
    wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS


def _get(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _required(env: Mapping[str, str], name: str) -> str:
    value = _get(env, name)
    if not value:
        raise ContractError(f"{name} is not set: mount the tenant's credentials Secret with envFrom")
    return value


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    raw = _get(env, name)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ContractError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ContractError(f"{name} must be greater than zero, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name).lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ContractError(f"{name} must be true or false, got {raw!r}")


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _nodes(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    nodes = _list(env, name)
    for node in nodes:
        host, _, port = node.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ContractError(f"{name} must list host:port pairs separated by commas, got {node!r}")
    return nodes


def check_cluster_keys(key_prefix: str, audit: str, names: tuple[str, str] = (Env.KEY_PREFIX, Env.AUDIT_KEY)) -> None:
    """On a cluster the tenant prefix and the audit stream must carry one hash tag (one slot), or no transaction of
    the library could hold a write and its audit event: ContractError naming both variables otherwise."""
    tag = hash_tag(key_prefix)
    if tag is None or hash_tag(audit) != tag:
        raise ContractError(
            f"on a cluster {names[0]} and {names[1]} must carry the same hash tag ({{...}}), so a write and its "
            f"audit event land in one slot; got {key_prefix!r} and {audit!r}"
        )


def read_env(env: Mapping[str, str] | None = None) -> TenantEnv:
    """The one reader of the Secrets' variables (default: `os.environ`). ContractError names a missing or malformed
    variable, never a value of REDIS_URL, REDIS_PASSWORD or MEMORY_KEYRING."""
    env = os.environ if env is None else env
    redis_url = _required(env, Env.REDIS_URL)
    tenant_id = _required(env, Env.TENANT_ID)
    namespace, _, name = tenant_id.partition("/")
    if not namespace or not name:
        raise ContractError(f"{Env.TENANT_ID} must be <namespace>/<name>, got {tenant_id!r}")
    prefix = _required(env, Env.KEY_PREFIX)
    if not prefix.endswith(":"):
        raise ContractError(f"{Env.KEY_PREFIX} must end with ':'")
    isolation = _get(env, Env.ISOLATION) or "moderate"
    if isolation not in ISOLATION_LEVELS:
        raise ContractError(f"{Env.ISOLATION} {isolation!r} is not one of {', '.join(ISOLATION_LEVELS)}")
    encryption = (_get(env, Env.ENCRYPTION) or Env.ENCRYPTION_REQUIRED).lower()
    if encryption not in (Env.ENCRYPTION_REQUIRED, Env.ENCRYPTION_DISABLED):
        raise ContractError(f"{Env.ENCRYPTION} must be required or disabled, got {encryption!r}")
    masking = _list(env, Env.MASKING)
    unknown = sorted(set(masking) - set(MASKING_DETECTORS))
    if unknown:
        raise ContractError(f"{Env.MASKING} names unknown detectors {unknown}; known: {list(MASKING_DETECTORS)}")
    mode = _get(env, Env.MASKING_MODE).lower() or "redact"
    if mode not in MASKING_MODES:
        raise ContractError(f"{Env.MASKING_MODE} must be redact or hash, got {mode!r}")
    cluster = _nodes(env, Env.CLUSTER_NODES)
    audit = _get(env, Env.AUDIT_KEY) or audit_key(namespace, name, cluster=bool(cluster))
    if cluster:
        check_cluster_keys(prefix, audit)
    return TenantEnv(
        redis_url=redis_url,
        tenant_id=tenant_id,
        key_prefix=prefix,
        shared_prefix=_get(env, Env.SHARED_PREFIX) or shared_prefix(prefix),
        audit_key=audit,
        seal_key=_get(env, Env.SEAL_KEY) or seal_key(namespace, name, cluster=bool(cluster)),
        isolation=isolation,
        agent_id=_get(env, Env.AGENT_ID) or None,
        agent_prefix=_get(env, Env.AGENT_PREFIX) or None,
        username=_get(env, Env.REDIS_USERNAME) or None,
        encryption_required=encryption == Env.ENCRYPTION_REQUIRED,
        keyring=_get(env, Env.KEYRING) or None,
        keyring_file=_get(env, Env.KEYRING_FILE) or None,
        retention_days=_positive_int(env, Env.RETENTION_DAYS),
        audit_retention_days=_positive_int(env, Env.AUDIT_RETENTION_DAYS),
        quota_keys=_positive_int(env, Env.QUOTA_KEYS),
        quota_bytes=_positive_int(env, Env.QUOTA_BYTES),
        masking=masking,
        masking_mode=mode,
        access_logging=_bool(env, Env.ACCESS_LOGGING, default=True),
        legacy_envelopes=_bool(env, Env.LEGACY_ENVELOPES, default=True),
        frameworks=_list(env, Env.FRAMEWORKS),
        results_prefix=_get(env, Env.RESULTS_PREFIX) or None,
        cluster_nodes=cluster,
        wait_replicas=_positive_int(env, Env.WAIT_REPLICAS) or 0,
        wait_timeout_ms=_positive_int(env, Env.WAIT_TIMEOUT_MS) or DEFAULT_WAIT_TIMEOUT_MS,
    )
