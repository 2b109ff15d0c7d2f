"""The library's configuration: the credentials Secret's environment (`envFrom`) plus the tenant keyring.

`MemoryConfig.from_env()` reads exactly what the operator writes; every field can also be passed explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from memory_client.crypto import Keyring
from memory_client.errors import ConfigError

__all__ = ["MASKING_DETECTORS", "MemoryConfig"]

MASKING_DETECTORS: Final = ("email", "phone", "ssn", "payment_card", "iban", "ip_address")
_ISOLATION: Final = ("minimal", "moderate", "strict")
_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off")


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be greater than zero, got {value}")
    return value


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set: mount the tenant's credentials Secret with envFrom")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _keyring(env: Mapping[str, str], keyring_file: str | Path | None) -> Keyring | None:
    path = keyring_file or env.get("MEMORY_KEYRING_FILE", "").strip()
    if path:
        try:
            return Keyring.from_json(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read the keyring file {path}: {exc.strerror}") from None
    text = env.get("MEMORY_KEYRING", "").strip()
    return Keyring.from_json(text) if text else None


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

    def __post_init__(self) -> None:
        if self.isolation not in _ISOLATION:
            raise ConfigError(f"MEMORY_ISOLATION {self.isolation!r} is not one of {', '.join(_ISOLATION)}")
        if not self.key_prefix.endswith(":"):
            raise ConfigError("MEMORY_KEY_PREFIX must end with ':'")
        unknown = sorted(set(self.masking) - set(MASKING_DETECTORS))
        if unknown:
            raise ConfigError(f"MEMORY_MASKING names unknown detectors {unknown}; known: {list(MASKING_DETECTORS)}")
        if self.masking_mode not in ("redact", "hash"):
            raise ConfigError(f"MEMORY_MASKING_MODE must be redact or hash, got {self.masking_mode!r}")
        # Strict isolation forces encryption on in the operator; a Secret saying otherwise was edited.
        if (self.encryption or self.isolation == "strict") and self.keyring is None:
            raise ConfigError("encryption is required but no keyring was given (MEMORY_KEYRING or a keyring file)")
        if self.masking_mode == "hash" and self.masking and self.keyring is None:
            raise ConfigError("keyed-hash masking needs the tenant keyring")
        if self.isolation == "strict" and self.agent_id is not None and self.agent_prefix is None:
            raise ConfigError("strict isolation: MEMORY_AGENT_PREFIX is missing from the agent's Secret")
        ns, _, name = self.tenant_id.partition("/")
        if not ns or not name:
            raise ConfigError(f"MEMORY_TENANT_ID must be <namespace>/<name>, got {self.tenant_id!r}")
        # Frozen dataclass: derived defaults go through object.__setattr__.
        if not self.shared_prefix:
            object.__setattr__(self, "shared_prefix", f"{self.key_prefix}shared:")
        if not self.audit_key:
            object.__setattr__(self, "audit_key", f"audit:{ns}:{name}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, keyring_file: str | Path | None = None) -> MemoryConfig:
        """Read the credentials Secret's variables (default: `os.environ`) and the keyring.

        The keyring comes from `keyring_file`, else `MEMORY_KEYRING_FILE`, else `MEMORY_KEYRING`.
        """
        env = os.environ if env is None else env
        masking = tuple(d.strip() for d in env.get("MEMORY_MASKING", "").split(",") if d.strip())
        encryption = env.get("MEMORY_ENCRYPTION", "required").strip().lower()
        if encryption not in ("required", "disabled"):
            raise ConfigError(f"MEMORY_ENCRYPTION must be required or disabled, got {encryption!r}")
        return cls(
            redis_url=_required(env, "REDIS_URL"),
            tenant_id=_required(env, "MEMORY_TENANT_ID"),
            key_prefix=_required(env, "MEMORY_KEY_PREFIX"),
            isolation=env.get("MEMORY_ISOLATION", "moderate").strip() or "moderate",
            agent_id=env.get("MEMORY_AGENT_ID", "").strip() or None,
            agent_prefix=env.get("MEMORY_AGENT_PREFIX", "").strip() or None,
            shared_prefix=env.get("MEMORY_SHARED_PREFIX", "").strip(),
            username=env.get("REDIS_USERNAME", "").strip() or None,
            encryption=encryption == "required",
            keyring=_keyring(env, keyring_file),
            retention_days=_positive_int(env, "MEMORY_RETENTION_DAYS"),
            quota_keys=_positive_int(env, "MEMORY_QUOTA_KEYS"),
            quota_bytes=_positive_int(env, "MEMORY_QUOTA_BYTES"),
            audit_key=env.get("MEMORY_AUDIT_KEY", "").strip(),
            audit_retention_days=_positive_int(env, "MEMORY_AUDIT_RETENTION_DAYS"),
            masking=masking,
            masking_mode=env.get("MEMORY_MASKING_MODE", "redact").strip().lower() or "redact",
            access_logging=_bool(env, "MEMORY_ACCESS_LOGGING", default=True),
            legacy_envelopes=_bool(env, "MEMORY_LEGACY_ENVELOPES", default=True),
        )

    @property
    def actor(self) -> str:
        """Who audit events name: the agent, else the ACL user, else the tenant."""
        return self.agent_id or self.username or self.tenant_id

    def agent_area(self, agent: str) -> str:
        """The key prefix of an agent's own data (its conversations)."""
        if self.agent_prefix is not None and agent == self.agent_id:
            return self.agent_prefix
        return f"{self.key_prefix}agent:{agent}:"
