"""Object storage, the global resourceVersion counter, a bounded per-resource event log and watchers.

Every lookup is a dict access keyed by (group, plural) -> namespace -> name, so the cost of a request
does not depend on how many requests came before it. Stored objects are never mutated in place: a write
stores a new dict, which lets readers serialise what they got without copying it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import gone
from .resources import ResourceKey

__all__ = ["ObjectRef", "Store", "WatchEvent", "Watcher"]

JsonObj = dict[str, Any]
ObjectRef = tuple[ResourceKey, str, str]
"""(resource key, namespace or "", name)."""


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    type: str
    obj: JsonObj
    old: JsonObj | None = None


@dataclass(eq=False)
class Watcher:
    """One open watch: the store pushes events; `None` means the resource went away."""

    key: ResourceKey
    queue: asyncio.Queue[WatchEvent | None] = field(default_factory=asyncio.Queue)


class Store:
    def __init__(self, history: int = 10_000) -> None:
        self._objects: dict[ResourceKey, dict[str, dict[str, JsonObj]]] = {}
        self._by_uid: dict[str, ObjectRef] = {}
        self._dependents: dict[str, set[ObjectRef]] = {}
        self._log: dict[ResourceKey, deque[WatchEvent]] = {}
        # The newest rv each resource's log has forgotten: watching from before it is 410 Gone.
        self._compacted: dict[ResourceKey, int] = {}
        self._watchers: dict[ResourceKey, set[Watcher]] = {}
        self._history = history
        self._rv = 1

    @property
    def resource_version(self) -> int:
        return self._rv

    # -- reads -------------------------------------------------------------------------------------
    def get(self, key: ResourceKey, namespace: str, name: str) -> JsonObj | None:
        return self._objects.get(key, {}).get(namespace, {}).get(name)

    def items(self, key: ResourceKey, namespace: str | None = None) -> Iterator[JsonObj]:
        by_namespace = self._objects.get(key, {})
        if namespace is not None:
            yield from by_namespace.get(namespace, {}).values()
            return
        for objects in by_namespace.values():
            yield from objects.values()

    def count_in_namespace(self, key: ResourceKey, namespace: str) -> int:
        return len(self._objects.get(key, {}).get(namespace, {}))

    def by_uid(self, uid: str) -> ObjectRef | None:
        return self._by_uid.get(uid)

    def dependents(self, owner_uid: str) -> list[ObjectRef]:
        return sorted(self._dependents.get(owner_uid, ()))

    # -- writes ------------------------------------------------------------------------------------
    def put(self, key: ResourceKey, obj: JsonObj, old: JsonObj | None) -> JsonObj:
        """Store `obj` (a fresh dict the caller hands over) under a new resourceVersion."""
        self._rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._rv)
        namespace, name = meta.get("namespace", ""), meta["name"]
        self._objects.setdefault(key, {}).setdefault(namespace, {})[name] = obj
        ref = (key, namespace, name)
        if old is not None:
            self._unindex_owners(old, ref)
        self._by_uid[meta["uid"]] = ref
        self._index_owners(obj, ref)
        self._record(key, WatchEvent(self._rv, "MODIFIED" if old else "ADDED", obj, old))
        return obj

    def remove(self, key: ResourceKey, obj: JsonObj) -> JsonObj:
        """Forget `obj`; the DELETED event carries a new resourceVersion, as etcd's delete revision."""
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        by_namespace = self._objects.get(key, {})
        by_namespace.get(namespace, {}).pop(name, None)
        if namespace in by_namespace and not by_namespace[namespace]:
            del by_namespace[namespace]
        self._unindex_owners(obj, (key, namespace, name))
        self._by_uid.pop(meta["uid"], None)
        self._rv += 1
        gone_obj = {**obj, "metadata": {**meta, "resourceVersion": str(self._rv)}}
        self._record(key, WatchEvent(self._rv, "DELETED", gone_obj, obj))
        return gone_obj

    def drop_resource(self, key: ResourceKey) -> None:
        """A CRD was deleted: its objects vanish and its watches end."""
        for obj in list(self.items(key)):
            self.remove(key, obj)
        self._objects.pop(key, None)
        self._log.pop(key, None)
        self._compacted.pop(key, None)
        for watcher in self._watchers.pop(key, set()):
            watcher.queue.put_nowait(None)

    def _index_owners(self, obj: JsonObj, ref: ObjectRef) -> None:
        for owner in obj["metadata"].get("ownerReferences") or ():
            self._dependents.setdefault(owner.get("uid", ""), set()).add(ref)

    def _unindex_owners(self, obj: JsonObj, ref: ObjectRef) -> None:
        for owner in obj["metadata"].get("ownerReferences") or ():
            uid = owner.get("uid", "")
            refs = self._dependents.get(uid)
            if refs is not None:
                refs.discard(ref)
                if not refs:
                    del self._dependents[uid]

    # -- events ------------------------------------------------------------------------------------
    def _record(self, key: ResourceKey, event: WatchEvent) -> None:
        log = self._log.setdefault(key, deque())
        if len(log) >= self._history:
            self._compacted[key] = log.popleft().rv
        log.append(event)
        for watcher in self._watchers.get(key, ()):
            watcher.queue.put_nowait(event)

    def events_since(self, key: ResourceKey, rv: int) -> list[WatchEvent]:
        """Events of one resource newer than `rv`; 410 Gone when the log no longer reaches back that far."""
        if rv < self._compacted.get(key, 0):
            raise gone(f"too old resource version: {rv} ({self._compacted[key] + 1})")
        log = self._log.get(key, deque())
        if not log or log[-1].rv <= rv:
            return []
        return [event for event in log if event.rv > rv]

    def subscribe(self, key: ResourceKey) -> Watcher:
        watcher = Watcher(key)
        self._watchers.setdefault(key, set()).add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.key)
        if watchers is not None:
            watchers.discard(watcher)

    def watcher_count(self) -> int:
        return sum(len(w) for w in self._watchers.values())

    def close_watchers(self) -> None:
        """End every open watch (server shutdown)."""
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)
