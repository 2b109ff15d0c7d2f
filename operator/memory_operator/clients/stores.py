"""Admin connections to MemoryStores, built from their admin Secrets and reused while those stay the same."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from memory_operator.api.v1alpha1 import MemoryStore
from memory_operator.builders.acl import ServerCapabilities
from memory_operator.builders.secrets import secret_value
from memory_operator.clients.kube import KubeClient
from memory_operator.clients.redis_admin import RedisAdmin
from memory_operator.errors import SecretNotFound

__all__ = ["StoreConnections"]


@dataclass(frozen=True)
class _Identity:
    """What an admin connection depends on: a change to any of it means a new connection."""

    url: str
    secret_version: str
    ca_version: str


class StoreConnections:
    """One `RedisAdmin` per MemoryStore, rebuilt when its URL or its Secrets change. Thread-safe."""

    #: how long a server's command list is trusted; it changes only when the server is upgraded
    CAPABILITIES_TTL = 300.0

    def __init__(self, kube: KubeClient, timeout: float = 5.0) -> None:
        self._kube = kube
        self._timeout = timeout
        self._lock = threading.Lock()
        self._admins: dict[str, tuple[_Identity, RedisAdmin]] = {}
        self._capabilities: dict[int, tuple[float, ServerCapabilities]] = {}

    def capabilities(self, admin: RedisAdmin) -> ServerCapabilities:
        """`admin.capabilities()`, remembered for CAPABILITIES_TTL per connection (it costs two round trips)."""
        now = time.monotonic()
        with self._lock:
            cached = self._capabilities.get(id(admin))
        if cached is not None and now - cached[0] < self.CAPABILITIES_TTL:
            return cached[1]
        caps = admin.capabilities()
        with self._lock:
            self._capabilities[id(admin)] = (now, caps)
        return caps

    def admin_for(self, store: MemoryStore) -> RedisAdmin:
        """The admin connection for `store`; raises SecretNotFound when a referenced Secret or key is missing."""
        ref = store.spec.admin_secret_ref
        secret = self._kube.get_secret(ref.namespace, ref.name)
        if secret is None:
            raise SecretNotFound(
                f"spec.adminSecretRef: Secret {ref.namespace}/{ref.name} of MemoryStore {store.name} not found"
            )
        username, password = secret_value(secret, ref.username_key), secret_value(secret, ref.password_key)
        for key, value in ((ref.username_key, username), (ref.password_key, password)):
            if not value:
                raise SecretNotFound(f"spec.adminSecretRef: Secret {ref.namespace}/{ref.name} has no key {key!r}")
        ca_pem, ca_version = self._ca(store)
        identity = _Identity(store.spec.url, secret["metadata"].get("resourceVersion", ""), ca_version)
        with self._lock:
            cached = self._admins.get(store.name)
            if cached is not None and cached[0] == identity:
                return cached[1]
            admin = RedisAdmin(
                store.spec.url,
                username=username or "",
                password=password or "",
                ca_pem=ca_pem,
                timeout=self._timeout,
            )
            self._admins[store.name] = (identity, admin)
            if cached is not None:
                self._capabilities.pop(id(cached[1]), None)
        if cached is not None:
            cached[1].close()
        return admin

    def _ca(self, store: MemoryStore) -> tuple[bytes | None, str]:
        ca_ref = store.spec.tls.ca_secret_ref if store.spec.tls else None
        if ca_ref is None:
            return None, ""
        secret = self._kube.get_secret(ca_ref.namespace, ca_ref.name)
        pem = secret_value(secret, ca_ref.key) if secret else None
        if secret is None or not pem:
            raise SecretNotFound(
                f"spec.tls.caSecretRef: Secret {ca_ref.namespace}/{ca_ref.name} key {ca_ref.key!r} not found"
            )
        return pem.encode(), secret["metadata"].get("resourceVersion", "")

    def forget(self, store_name: str) -> None:
        with self._lock:
            cached = self._admins.pop(store_name, None)
            if cached is not None:
                self._capabilities.pop(id(cached[1]), None)
        if cached is not None:
            cached[1].close()

    def close(self) -> None:
        with self._lock:
            admins, self._admins = list(self._admins.values()), {}
            self._capabilities.clear()
        for _, admin in admins:
            admin.close()
