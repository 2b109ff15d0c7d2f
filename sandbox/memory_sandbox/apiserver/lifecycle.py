"""Deletion: finalizers and deletionTimestamp, namespace teardown, ownerReference garbage collection.

These run synchronously inside the request that triggers them (the real controllers are asynchronous):
when a DELETE returns, dependents without finalizers are already gone. Propagation `Foreground` is
treated as `Background`; `Orphan` strips the owner's reference from its dependents.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from . import errors
from .clock import now
from .resources import CRD_KEY, NAMESPACE_KEY, ResourceType, from_crd

if TYPE_CHECKING:
    from .cluster import Cluster

__all__ = ["check_new_finalizers", "delete", "remove"]

JsonObj = dict[str, Any]


def check_new_finalizers(rtype: ResourceType, old: JsonObj, new: JsonObj) -> None:
    """A terminating object may lose finalizers but never gain them (apiserver's ValidateObjectMetaUpdate)."""
    if not old["metadata"].get("deletionTimestamp"):
        return
    added = set(new["metadata"].get("finalizers") or ()) - set(old["metadata"].get("finalizers") or ())
    if added:
        message = (
            "Forbidden: no new finalizers can be added if the object is being deleted, "
            f"found new finalizers {sorted(added)}"
        )
        cause = {"reason": "FieldValueForbidden", "message": message, "field": "metadata.finalizers"}
        raise errors.invalid(rtype.kind, rtype.group, old["metadata"]["name"], [cause])


def delete(cluster: Cluster, rtype: ResourceType, obj: JsonObj, policy: str = "Background") -> JsonObj:
    """DELETE semantics: mark objects with finalizers, remove the others (and what they own)."""
    if rtype.key == NAMESPACE_KEY:
        return _delete_namespace(cluster, obj)
    if obj["metadata"].get("finalizers"):
        return _mark_terminating(cluster, rtype, obj)
    return remove(cluster, rtype, obj, policy)


def _mark_terminating(cluster: Cluster, rtype: ResourceType, obj: JsonObj) -> JsonObj:
    if obj["metadata"].get("deletionTimestamp"):
        return obj
    marked = copy.deepcopy(obj)
    marked["metadata"].update(deletionTimestamp=now(), deletionGracePeriodSeconds=0)
    return cluster.store.put(rtype.key, marked, obj)


def remove(cluster: Cluster, rtype: ResourceType, obj: JsonObj, policy: str = "Background") -> JsonObj:
    """Take the object out of storage, then let the 'controllers' react: CRDs, GC, namespaces."""
    gone = cluster.store.remove(rtype.key, obj)
    if rtype.key == CRD_KEY:
        _forget_crd(cluster, obj)
    uid = obj["metadata"]["uid"]
    if policy == "Orphan":
        _orphan(cluster, uid)
    else:
        _collect(cluster, obj, uid)
    namespace = obj["metadata"].get("namespace")
    if namespace:
        _finish_namespace(cluster, namespace)
    return gone


def _forget_crd(cluster: Cluster, crd: JsonObj) -> None:
    key = from_crd(crd).key
    learned = cluster.registry.get(key)
    if learned is not None and not learned.builtin:
        cluster.registry.remove(key)
        cluster.store.drop_resource(key)


def _collect(cluster: Cluster, owner: JsonObj, uid: str) -> None:
    """Delete dependents whose owners are all gone (same namespace as a namespaced owner)."""
    owner_namespace = owner["metadata"].get("namespace", "")
    for key, namespace, name in cluster.store.dependents(uid):
        dependent = cluster.store.get(key, namespace, name)
        rtype = cluster.registry.get(key)
        if dependent is None or rtype is None or (owner_namespace and namespace != owner_namespace):
            continue
        owners = dependent["metadata"].get("ownerReferences") or ()
        if any(cluster.store.by_uid(ref.get("uid", "")) for ref in owners):
            continue
        delete(cluster, rtype, dependent)


def _orphan(cluster: Cluster, uid: str) -> None:
    for key, namespace, name in cluster.store.dependents(uid):
        dependent = cluster.store.get(key, namespace, name)
        if dependent is None:
            continue
        orphaned = copy.deepcopy(dependent)
        refs = [r for r in orphaned["metadata"].get("ownerReferences") or () if r.get("uid") != uid]
        orphaned["metadata"]["ownerReferences"] = refs
        if not refs:
            del orphaned["metadata"]["ownerReferences"]
        cluster.store.put(key, orphaned, dependent)


def _delete_namespace(cluster: Cluster, namespace: JsonObj) -> JsonObj:
    """Mark the namespace Terminating, delete its contents, and drop it once nothing is left."""
    name = namespace["metadata"]["name"]
    if not namespace["metadata"].get("deletionTimestamp"):
        marked = copy.deepcopy(namespace)
        marked["metadata"].update(deletionTimestamp=now(), deletionGracePeriodSeconds=0)
        marked["status"] = {"phase": "Terminating"}
        namespace = cluster.store.put(NAMESPACE_KEY, marked, namespace)
    for rtype in cluster.registry:
        if rtype.namespaced:
            for obj in list(cluster.store.items(rtype.key, name)):
                if cluster.store.get(rtype.key, name, obj["metadata"]["name"]) is not None:
                    delete(cluster, rtype, obj)
    _finish_namespace(cluster, name)
    return cluster.store.get(NAMESPACE_KEY, "", name) or namespace


def _finish_namespace(cluster: Cluster, name: str) -> None:
    namespace = cluster.store.get(NAMESPACE_KEY, "", name)
    if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
        return
    if namespace["metadata"].get("finalizers"):
        return
    if any(cluster.store.count_in_namespace(t.key, name) for t in cluster.registry if t.namespaced):
        return
    rtype = cluster.registry.get(NAMESPACE_KEY)
    assert rtype is not None
    remove(cluster, rtype, namespace)
