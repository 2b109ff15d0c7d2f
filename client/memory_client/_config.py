"""The library's configuration: the credentials Secret's environment (`envFrom`) plus the tenant keyring.

`MemoryConfig.from_env()` reads exactly what the operator writes; every field can also be passed explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from memory_client import contract
from memory_client._crypto import Keyring
from memory_client.contract import (
    DEFAULT_WAIT_TIMEOUT_MS,
    ISOLATION_LEVELS,
    MASKING_DETECTORS,
    MASKING_MODES,
    ContractError,
    Env,
    TenantEnv,
)
from memory_client.errors import ConfigError

__all__ = ["MASKING_DETECTORS", "MemoryConfig"]


def _keyring(read: TenantEnv, keyring_file: str | Path | None) -> Keyring | None:
    path = keyring_file or read.keyring_file
    if path:
        try:
            return Keyring.from_json(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read the keyring file {path}: {exc.strerror}") from None
    return Keyring.from_json(read.keyring) if read.keyring else None


@dataclass(frozen=True)
class MemoryConfig:
    """Everything the library needs to act for one tenant (and, with per-agent credentials, one agent)."""

    redis_url: str = field(repr=False)  # carries the password
    tenant_id: str
    key_prefix: str
    isolation: str = "moderate"
    agent_id: str | None = None
    agent_prefix: str | None = None
    shared_prefix: str = ""
    username: str | None = None
    encryption: bool = True
    keyring: Keyring | None = field(default=None, repr=False)
    retention_days: int | None = None
    quota_keys: int | None = None
    quota_bytes: int | None = None
    audit_key: str = ""
    audit_retention_days: int | None = None
    masking: tuple[str, ...] = ()
    masking_mode: str = "redact"
    access_logging: bool = True
    #: Whether format-1 envelopes (written before values were bound to their place) are still read.
    legacy_envelopes: bool = True
    #: The store is a Redis/Valkey Cluster: host:port of nodes to find the tenant's slot from (REDIS_URL's first).
    cluster_nodes: tuple[str, ...] = ()
    #: Writes are acknowledged once this many replicas have them (WAIT), within `wait_timeout_ms`; 0: the primary.
    wait_replicas: int = 0
    wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS

    def __post_init__(self) -> None:
        if self.isolation not in ISOLATION_LEVELS:
            raise ConfigError(f"{Env.ISOLATION} {self.isolation!r} is not one of {', '.join(ISOLATION_LEVELS)}")
        if not self.key_prefix.endswith(":"):
            raise ConfigError(f"{Env.KEY_PREFIX} must end with ':'")
        unknown = sorted(set(self.masking) - set(MASKING_DETECTORS))
        if unknown:
            raise ConfigError(f"{Env.MASKING} names unknown detectors {unknown}; known: {list(MASKING_DETECTORS)}")
        if self.masking_mode not in MASKING_MODES:
            raise ConfigError(f"{Env.MASKING_MODE} must be redact or hash, got {self.masking_mode!r}")
        # Strict isolation forces encryption on in the operator; a Secret saying otherwise was edited.
        if (self.encryption or self.isolation == "strict") and self.keyring is None:
            raise ConfigError("encryption is required but no keyring was given (MEMORY_KEYRING or a keyring file)")
        if self.masking_mode == "hash" and self.masking and self.keyring is None:
            raise ConfigError("keyed-hash masking needs the tenant keyring")
        if self.isolation == "strict" and self.agent_id is not None and self.agent_prefix is None:
            raise ConfigError("strict isolation: MEMORY_AGENT_PREFIX is missing from the agent's Secret")
        ns, _, name = self.tenant_id.partition("/")
        if not ns or not name:
            raise ConfigError(f"{Env.TENANT_ID} must be <namespace>/<name>, got {self.tenant_id!r}")
        # Frozen dataclass: derived defaults go through object.__setattr__.
        if not self.shared_prefix:
            object.__setattr__(self, "shared_prefix", contract.shared_prefix(self.key_prefix))
        if not self.audit_key:
            object.__setattr__(self, "audit_key", contract.audit_key(ns, name, cluster=bool(self.cluster_nodes)))
        if self.cluster_nodes:
            try:
                contract.check_cluster_keys(self.key_prefix, self.audit_key)
            except ContractError as exc:
                raise ConfigError(str(exc)) from None
        if self.wait_replicas < 0 or self.wait_timeout_ms <= 0:
            raise ConfigError(f"{Env.WAIT_REPLICAS} must be 0 or more and {Env.WAIT_TIMEOUT_MS} more than 0")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, keyring_file: str | Path | None = None) -> MemoryConfig:
        """Read the credentials Secret's variables (default: `os.environ`) and the keyring.

        The keyring comes from `keyring_file`, else `MEMORY_KEYRING_FILE`, else `MEMORY_KEYRING`.
        """
        try:
            read = contract.read_env(env)
        except ContractError as exc:
            raise ConfigError(str(exc)) from None
        return cls(
            redis_url=read.redis_url,
            tenant_id=read.tenant_id,
            key_prefix=read.key_prefix,
            isolation=read.isolation,
            agent_id=read.agent_id,
            agent_prefix=read.agent_prefix,
            shared_prefix=read.shared_prefix,
            username=read.username,
            encryption=read.encryption_required,
            keyring=_keyring(read, keyring_file),
            retention_days=read.retention_days,
            quota_keys=read.quota_keys,
            quota_bytes=read.quota_bytes,
            audit_key=read.audit_key,
            audit_retention_days=read.audit_retention_days,
            masking=read.masking,
            masking_mode=read.masking_mode,
            access_logging=read.access_logging,
            legacy_envelopes=read.legacy_envelopes,
            cluster_nodes=read.cluster_nodes,
            wait_replicas=read.wait_replicas,
            wait_timeout_ms=read.wait_timeout_ms,
        )

    @property
    def actor(self) -> str:
        """Who audit events name: the agent, else the ACL user, else the tenant."""
        return self.agent_id or self.username or self.tenant_id

    def agent_area(self, agent: str) -> str:
        """The key prefix of an agent's own data (its conversations)."""
        if self.agent_prefix is not None and agent == self.agent_id:
            return self.agent_prefix
        return contract.agent_prefix(self.key_prefix, agent)
