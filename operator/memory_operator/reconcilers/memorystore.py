"""MemoryStore reconcile: connect with the admin credentials and check the server can host tenants."""

from __future__ import annotations

from memory_operator.api.v1alpha1 import MemoryStore, MemoryStoreStatus, MemoryTenant
from memory_operator.api.v1alpha1.memorystore import CLUSTER, ServerStatus, StoreNode
from memory_operator.builders import acl
from memory_operator.clients.redis_admin import RedisAdmin, StoreUnsupported
from memory_operator.clients.redis_cluster import ClusterAdmin
from memory_operator.deps import Deps
from memory_operator.errors import InvalidSpec, StoreInUse, StoreUnavailable
from memory_operator.reconcilers.common import Event, Outcome, condition, store_errors, with_conditions

__all__ = ["finalize", "reconcile", "tenants_on"]


def reconcile(store: MemoryStore, deps: Deps) -> Outcome[MemoryStoreStatus]:
    """Ready=True when the server answers the admin user and is Redis >= 7 or Valkey >= 8 with ACLs."""
    with store_errors(store.name):
        admin = deps.stores.admin_for(store)
        _check_mode(store, admin)
        info = admin.server_info()
        admin.capabilities()  # refuses servers tenants cannot be placed on (too old, no ACLs)
        nodes = _nodes(admin) if isinstance(admin, ClusterAdmin) else None
    events = _survey(store, admin, deps)
    server = ServerStatus(engine=info.engine, version=info.version_string)
    status = store.status.model_copy(update={"server": server, "nodes": nodes})
    where = f"{info} answers at {store.spec.url}"
    if nodes is not None:
        online = sum(n.health == "online" for n in nodes)
        converged = sum(bool(n.converged) for n in nodes)
        where = (
            f"{info} cluster of {len(nodes)} nodes ({online} online, {converged} with every tenant user) answers "
            f"at {store.spec.url}"
        )
    ready = condition("Ready", "True", "Connected", where, store.metadata.generation, deps.clock())
    return Outcome(with_conditions(status, store.metadata.generation, ready), events)


def _check_mode(store: MemoryStore, admin: RedisAdmin) -> None:
    """spec.mode must say what the server is: a tenant's keys and users are laid out for it."""
    try:
        enabled = admin.cluster_enabled()  # a ClusterAdmin asks any node that answers, not only the seed
    except StoreUnsupported:  # CLUSTER SHARDS refused: not a cluster
        enabled = False
    if enabled != (store.spec.mode == CLUSTER):
        actual = "runs in cluster mode" if enabled else "is not a cluster (INFO cluster: cluster_enabled:0)"
        raise InvalidSpec(f"spec.mode: {store.spec.mode!r}, but the server at {store.spec.url} {actual}")


def _nodes(admin: ClusterAdmin) -> list[StoreNode]:
    """Every node with its role and health, and whether it has every tenant user some node has (users are per
    node: the tenants' own passes put them everywhere; this shows where that has not happened yet)."""
    nodes = admin.nodes(fresh=True)
    coverage = admin.coverage(acl.USER_BASE)
    expected = set().union(*(users for users in coverage.values() if users is not None))
    shown = []
    for n in nodes:
        users = coverage.get(n.address)
        missing = None if users is None else len(expected - users)
        shown.append(
            StoreNode(
                address=n.address,
                role="primary" if n.primary else "replica",
                shard=n.shard,
                health=n.health,
                converged=None if missing is None else missing == 0,
                missing_users=missing,
            )
        )
    return shown


def _survey(store: MemoryStore, admin: RedisAdmin, deps: Deps) -> list[Event]:
    """Walk the keyspace once for every tenant due a survey (memory_operator.surveys). A walk that fails leaves
    the store Ready (it answered the health check) and its tenants due: the next pass walks again."""
    try:
        with store_errors(store.name):
            deps.surveys.run(store.name, admin, int(deps.clock().timestamp() * 1000))
    except StoreUnavailable as exc:
        return [Event("SurveyFailed", f"the hourly survey of the tenants' keys did not finish: {exc}", "Warning")]
    return []


def tenants_on(store_name: str, deps: Deps) -> list[str]:
    """`namespace/name` of every MemoryTenant provisioned on the store (from their status.store)."""
    return sorted(
        f"{t['metadata']['namespace']}/{t['metadata']['name']}"
        for t in deps.kube.list_cluster_objects(MemoryTenant.plural)
        if (t.get("status") or {}).get("store") == store_name
    )


def finalize(store_name: str, deps: Deps) -> None:
    """Let a MemoryStore go only once no tenant is provisioned on it: their finalizers need it to revoke access."""
    users = tenants_on(store_name, deps)
    if users:
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise StoreInUse(f"MemoryStore {store_name} still hosts {len(users)} MemoryTenant(s): {shown}")
    deps.stores.forget(store_name)
