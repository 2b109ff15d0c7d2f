"""Reconcile requests between objects (kubebuilder's EnqueueRequestsFromMapFunc and Owns()): a handler that learns
another object needs a look annotates it; that object's own handler reconciles it and writes its status.

The annotation lives outside kopf's storage prefix (`agentmemory.io/`) on purpose: kopf leaves every annotation
under that prefix out of the essence it diffs, so a change there would wake no handler.
"""

from __future__ import annotations

from typing import Any

from memory_operator.deps import Deps

__all__ = ["REQUEST_ANNOTATION", "request_reconcile", "requested", "spec_or_request_changed"]

#: set by whatever asked for the reconcile: `<Kind>/<name>@<its resourceVersion>`; anyone may set it to force one
REQUEST_ANNOTATION = "reconcile.agentmemory.io/requested-by"


def request_reconcile(deps: Deps, plural: str, namespace: str | None, name: str, cause: str) -> bool:
    """Ask for a reconcile of `plural` `namespace/name` (`namespace` None: cluster-scoped) on behalf of `cause`;
    False when that object is gone.

    The same cause twice is one request: the annotation's value does not change, so no handler wakes again.
    """
    annotations = {REQUEST_ANNOTATION: cause}
    if namespace is None:
        return deps.kube.annotate_cluster_object(plural, name, annotations)
    return deps.kube.annotate_namespaced_object(plural, namespace, name, annotations)


def spec_or_request_changed(old: Any, new: Any, **_: Any) -> bool:
    """An update handler's filter: a new spec, or a reconcile requested; other changes (labels, notes) need none."""
    old, new = old or {}, new or {}
    return bool(old.get("spec") != new.get("spec") or requested(old) != requested(new))


def requested(essence: Any) -> str | None:
    """The request annotation in a kopf body essence (`old` or `new` of a change), if any."""
    annotations = ((essence or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(REQUEST_ANNOTATION)
    return None if value is None else str(value)
