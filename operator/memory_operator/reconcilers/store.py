"""MemoryStore reconcile: connect with the admin credentials and check the server can host tenants."""

from __future__ import annotations

from memory_operator.api.v1alpha1 import MemoryStore, MemoryStoreStatus
from memory_operator.api.v1alpha1.memorystore import ServerStatus
from memory_operator.deps import Deps
from memory_operator.reconcilers.common import Outcome, condition, store_errors, with_conditions

__all__ = ["reconcile"]


def reconcile(store: MemoryStore, deps: Deps) -> Outcome[MemoryStoreStatus]:
    """Ready=True when the server answers the admin user and is Redis >= 7 or Valkey >= 8 with ACLs."""
    with store_errors(store.name):
        info = deps.stores.admin_for(store).server_info()
    status = store.status.model_copy(update={"server": ServerStatus(engine=info.engine, version=info.version)})
    ready = condition(
        "Ready",
        "True",
        "Connected",
        f"{info.engine} {info.version} answers at {store.spec.url}",
        store.metadata.generation,
        deps.clock(),
    )
    return Outcome(with_conditions(status, store.metadata.generation, ready))
