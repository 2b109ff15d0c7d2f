"""Admin connections to MemoryStores, built from their admin Secrets and reused while those stay the same."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from memory_operator.api.v1alpha1 import MemoryStore
from memory_operator.api.v1alpha1.memorystore import CLUSTER
from memory_operator.builders.acl import ServerCapabilities
from memory_operator.builders.secrets import secret_value
from memory_operator.clients.kube import KubeClient
from memory_operator.clients.redis_admin import RedisAdmin
from memory_operator.clients.redis_cluster import ClusterAdmin
from memory_operator.errors import InvalidSpec, SecretNotFound, StoreBusy

__all__ = ["DEFAULT_PER_STORE", "PER_STORE_ENV", "StoreConnections"]

#: reconciles a slow store may have in flight at once: half of kopf's workers (handlers/startup.py sets 8), so
#: tenants on other stores keep at least as many while one store hangs
DEFAULT_PER_STORE = 4
PER_STORE_ENV = "AGENTMEMORY_RECONCILES_PER_STORE"


@dataclass(frozen=True)
class _Identity:
    """What an admin connection depends on: a change to any of it means a new connection."""

    url: str
    mode: str
    secret_version: str
    ca_version: str


class StoreConnections:
    """One `RedisAdmin` per MemoryStore (a `ClusterAdmin` for `mode: Cluster`), rebuilt when its URL, mode or
    Secrets change. Thread-safe."""

    #: how long a server's command list is trusted; it changes only when the server is upgraded
    CAPABILITIES_TTL = 300.0

    def __init__(
        self,
        kube: KubeClient,
        timeout: float = 5.0,
        admin_namespaces: frozenset[str] | None = None,
        per_store: int = DEFAULT_PER_STORE,
        slow_after: float | None = None,
    ) -> None:
        if per_store < 1:
            raise ValueError(f"reconciles per store must be at least 1, not {per_store}")
        self._kube = kube
        #: how many reconciles a slow store may have in flight at once (`slot`)
        self.per_store = per_store
        #: a reconcile in flight this long says its store is slow (default: half the admin timeout)
        self.slow_after = timeout / 2 if slow_after is None else slow_after
        self._busy: dict[str, dict[object, float]] = {}  # per store: its reconciles in flight, and when each began
        self._timeout = timeout
        #: the only namespaces a store's Secrets are read from (None: any, for tests that build their own)
        self.admin_namespaces = admin_namespaces
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

    @contextmanager
    def slot(self, store_name: str) -> Iterator[None]:
        """Run the block as one of the store's reconciles in flight, or raise StoreBusy at once when the store is
        slow: `per_store` of them are already in flight and the oldest has run for `slow_after` (default 2.5 s).

        A store that answers promptly is never limited (a single store gets every worker); one that hangs keeps
        at most `per_store` workers once its reconciles are seen to hang. Never waits: a reconcile waiting here
        would still hold its worker thread. The one put off is retried shortly (StoreBusy), having done nothing.
        """
        now = time.monotonic()
        token = object()
        with self._lock:
            started = self._busy.setdefault(store_name, {})
            oldest = now - min(started.values(), default=now)
            if len(started) >= self.per_store and oldest >= self.slow_after:
                raise StoreBusy(
                    f"MemoryStore {store_name!r} has {len(started)} reconciles in flight, the oldest for "
                    f"{oldest:.0f}s; retrying shortly"
                )
            started[token] = now
        try:
            yield
        finally:
            with self._lock:
                del started[token]
                if not started:
                    self._busy.pop(store_name, None)

    @property
    def timeout(self) -> float:
        """How long one admin call may wait for the store (connect, or one reply)."""
        return self._timeout

    def check_namespaces(self, store: MemoryStore) -> None:
        """Refuse a store whose Secrets live outside the allowed namespaces, before anything is read.

        Whoever may create a MemoryStore must not make the operator read (and use, and quote) a Secret it can
        read elsewhere: a tenant's credentials or keyring. Raises InvalidSpec naming the field.
        """
        if self.admin_namespaces is None:
            return
        allowed = ", ".join(sorted(self.admin_namespaces))
        refs = [("spec.adminSecretRef.namespace", store.spec.admin_secret_ref.namespace)]
        if store.spec.tls is not None and store.spec.tls.ca_secret_ref is not None:
            refs.append(("spec.tls.caSecretRef.namespace", store.spec.tls.ca_secret_ref.namespace))
        for field, namespace in refs:
            if namespace not in self.admin_namespaces:
                raise InvalidSpec(
                    f"{field}: {namespace!r} is not a namespace the operator reads store Secrets from ({allowed}); "
                    "put the Secret there, or allow the namespace with --admin-secret-namespace"
                )

    def admin_for(self, store: MemoryStore) -> RedisAdmin:
        """The admin connection for `store`; raises InvalidSpec for a Secret outside the allowed namespaces and
        SecretNotFound when a referenced Secret or key is missing. No value read from a Secret is ever quoted."""
        self.check_namespaces(store)
        ref = store.spec.admin_secret_ref
        secret = self._kube.get_secret(ref.namespace, ref.name)
        if secret is None:
            raise SecretNotFound(
                f"spec.adminSecretRef: Secret {ref.namespace}/{ref.name} of MemoryStore {store.name} not found"
            )
        username, password = secret_value(secret, ref.username_key), secret_value(secret, ref.password_key)
        for field, key, value in (
            ("usernameKey", ref.username_key, username),
            ("passwordKey", ref.password_key, password),
        ):
            if not value:
                raise SecretNotFound(
                    f"spec.adminSecretRef.{field}: Secret {ref.namespace}/{ref.name} has no key {key!r}"
                )
        ca_pem, ca_version = self._ca(store)
        identity = _Identity(store.spec.url, store.spec.mode, secret["metadata"].get("resourceVersion", ""), ca_version)
        with self._lock:
            cached = self._admins.get(store.name)
            if cached is not None and cached[0] == identity:
                return cached[1]
            kind = ClusterAdmin if store.spec.mode == CLUSTER else RedisAdmin
            admin = kind(
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
                f"spec.tls.caSecretRef: Secret {ca_ref.namespace}/{ca_ref.name} has no key {ca_ref.key!r}"
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
