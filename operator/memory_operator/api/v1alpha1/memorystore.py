"""MemoryStore: a Redis >= 7 or Valkey >= 8 endpoint that tenants are placed on (cluster-scoped, like StorageClass)."""

from __future__ import annotations

import re
from typing import ClassVar, Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from memory_operator.api.base import WireModel
from memory_operator.api.v1alpha1.common import (
    AGE_COLUMN,
    DEFAULT_STORE_ANNOTATION,
    READY_COLUMNS,
    CustomObject,
    DnsLabel,
    DnsSubdomain,
    Region,
    StatusBase,
    cel_rules,
)

_HOST_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
_PORT = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"  # 1-65535
STORE_URL_PATTERN = rf"^rediss?://(\[[0-9a-fA-F:.]+\]|{_HOST_LABEL}(\.{_HOST_LABEL})*)(:{_PORT})?/?$"
MAX_HOST = 253
_TLS_NEEDS_REDISS = "only meaningful with a rediss:// URL"
_MODE_IMMUTABLE = "cannot change once set: tenants' keys are laid out for it (data is not migrated)"
STANDALONE: Final = "Standalone"
CLUSTER: Final = "Cluster"


class AdminSecretRef(WireModel):
    """Where the admin credentials live. The admin user needs +@all (it manages ACL users and scans keys)."""

    name: DnsSubdomain = Field(description="Name of the Secret.")
    namespace: DnsLabel = Field(description="Namespace of the Secret (stores are cluster-scoped).")
    username_key: str = Field(
        default="username", alias="usernameKey", description="Key holding the admin ACL username."
    )
    password_key: str = Field(default="password", alias="passwordKey", description="Key holding the password.")


class CaSecretRef(WireModel):
    """A Secret key holding a PEM CA bundle."""

    name: DnsSubdomain = Field(description="Name of the Secret.")
    namespace: DnsLabel = Field(description="Namespace of the Secret.")
    key: str = Field(default="ca.crt", description="Key holding the PEM bundle.")


class StoreTls(WireModel):
    """TLS settings for `rediss://` endpoints; without a CA the system trust store is used."""

    ca_secret_ref: CaSecretRef | None = Field(
        default=None, alias="caSecretRef", description="CA bundle to verify the server with."
    )


class MemoryStoreSpec(WireModel):
    """Desired state of a MemoryStore."""

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": "!has(self.tls) || self.url.startsWith('rediss://')",
                "message": _TLS_NEEDS_REDISS,
                "fieldPath": ".tls",
            },
            {
                "rule": "!has(oldSelf.mode) || (has(self.mode) && self.mode == oldSelf.mode)",
                "message": _MODE_IMMUTABLE,
                "fieldPath": ".mode",
            },
        )
    }

    url: str = Field(
        max_length=300,
        json_schema_extra={"pattern": STORE_URL_PATTERN},
        description="Endpoint as redis://host:port or rediss://host:port (TLS). No credentials or database in "
        "the URL: they come from adminSecretRef, and tenants always use database 0.",
    )
    admin_secret_ref: AdminSecretRef = Field(alias="adminSecretRef", description="Admin credentials.")
    mode: Literal["Standalone", "Cluster"] = Field(
        default="Standalone",
        description="Standalone (default): one server (with replicas behind it, if any). Cluster: a Redis/Valkey "
        "Cluster; url names any node, the operator finds the rest (CLUSTER SHARDS), creates every tenant's ACL "
        "users on every node and lays each tenant's keys out under one hash tag (mem:{<ns>:<name>}:), so a tenant "
        "lives in one slot of one shard. Checked against the server (INFO cluster); immutable.",
    )
    tls: StoreTls | None = Field(default=None, description="TLS options; only meaningful with rediss://.")
    region: Region | None = Field(
        default=None,
        description="Residency region of the data; tenants with spec.residency pick stores by it.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        """The schema's pattern, with messages that say which part is wrong (the pattern alone cannot)."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname or parts.username or parts.password:
            raise ValueError("must look like redis://host:port or rediss://host:port, without credentials")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("the port must be a number from 1 to 65535") from None
        if port == 0:
            raise ValueError("the port must be a number from 1 to 65535 (0 is not a port)")
        host = parts.hostname
        if len(host) > MAX_HOST or any(len(label) > 63 for label in host.split(".")):
            raise ValueError(f"the host must be at most {MAX_HOST} characters, each dot-separated part at most 63")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must not name a database or options: tenants always use database 0")
        if not re.match(STORE_URL_PATTERN, url):
            raise ValueError("must look like redis://host:port or rediss://host:port")
        return url

    @field_validator("tls")
    @classmethod
    def _tls_needs_rediss(cls, tls: StoreTls | None, info: ValidationInfo) -> StoreTls | None:
        url = info.data.get("url")
        if tls is not None and isinstance(url, str) and not url.startswith("rediss://"):
            raise ValueError(_TLS_NEEDS_REDISS)
        return tls


class ServerStatus(WireModel):
    """What the store's server reported about itself."""

    engine: str = Field(description="Server family: redis or valkey.")
    version: str = Field(description="Server version, e.g. 9.1.2.")


class StoreNode(WireModel):
    """One node of a cluster store, as CLUSTER SHARDS reported it on the last pass."""

    address: str = Field(description="host:port clients reach it at.")
    role: str = Field(description="primary or replica.")
    shard: int = Field(description="Index of its shard in CLUSTER SHARDS.")
    health: str = Field(description="online, loading or failed; tenants' users are kept on online and loading ones.")
    converged: bool | None = Field(
        default=None,
        description="Whether it has every tenant user any node has (None: it did not answer). A node restarted "
        "empty or added later is false until the tenants' next passes put their users on it.",
    )
    missing_users: int | None = Field(
        default=None, alias="missingUsers", description="How many tenant users it lacks (None: unknown)."
    )


class MemoryStoreStatus(StatusBase):
    """Observed state of a MemoryStore."""

    model_config = StatusBase.model_config | {"extra": "ignore"}

    server: ServerStatus | None = Field(default=None, description="Server family and version, once connected.")
    nodes: list[StoreNode] | None = Field(
        default=None, description="In Cluster mode: every node of the cluster, its role, shard and health."
    )


class MemoryStore(CustomObject):
    """A MemoryStore object as the reconcilers see it."""

    plural: ClassVar[str] = "memorystores"
    kind: ClassVar[str] = "MemoryStore"
    short_names: ClassVar[tuple[str, ...]] = ("mstore",)
    namespaced: ClassVar[bool] = False
    description: ClassVar[str] = (
        "A Redis >= 7 or Valkey >= 8 endpoint that MemoryTenants are placed on. Annotate one with "
        f'{DEFAULT_STORE_ANNOTATION}: "true" to make it the default.'
    )
    status_model: ClassVar[type[StatusBase]] = MemoryStoreStatus
    printer_columns: ClassVar[tuple[dict[str, str], ...]] = (
        *READY_COLUMNS,
        {"name": "Engine", "type": "string", "jsonPath": ".status.server.engine"},
        {"name": "Version", "type": "string", "jsonPath": ".status.server.version"},
        {"name": "Region", "type": "string", "jsonPath": ".spec.region"},
        {"name": "URL", "type": "string", "jsonPath": ".spec.url", "priority": "1"},
        AGE_COLUMN,
    )

    spec: MemoryStoreSpec
    status: MemoryStoreStatus = Field(default_factory=MemoryStoreStatus)

    @property
    def is_default(self) -> bool:
        return self.metadata.annotations.get(DEFAULT_STORE_ANNOTATION, "").lower() == "true"
