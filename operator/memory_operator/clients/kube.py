"""The Kubernetes API as the reconcilers need it: Secrets and our custom objects, as plain dicts.

The only module besides kopf itself that talks to the API server. Writes use server-side apply with one
field manager, so re-applying the whole desired object is the idempotent way to converge. The client remembers
the resourceVersion each of its writes produced (`wrote`), so a watch can tell its own echo from someone's edit.
For the kinds a watch keeps it told of (`watched`), it also remembers the last state of each object it read or
wrote (`Known`), so a converged pass reads them from memory and writes only what differs (BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from memory_operator.api.v1alpha1 import GROUP, VERSION
from memory_operator.clients.config import api_client

__all__ = ["FIELD_MANAGER", "AlreadyExists", "Known", "KubeClient", "KubeError", "OwnWrites"]

FIELD_MANAGER = "agent-memory-operator"
_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"


class KubeError(RuntimeError):
    """The API server refused or failed a request the operator needed (status code kept for callers)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class AlreadyExists(KubeError):
    pass


def _raise(exc: ApiException, what: str) -> None:
    reason = ""
    try:
        reason = json.loads(exc.body or "{}").get("message", "")
    except ValueError:
        reason = str(exc.reason)
    cls = AlreadyExists if exc.status == 409 and "already exists" in reason else KubeError
    raise cls(f"{what}: HTTP {exc.status} {reason}".rstrip(), exc.status) from None


class OwnWrites:
    """The resourceVersions the client's latest writes of each namespaced object produced (thread-safe).

    A watch event at one of them is the echo of our own write (the controllers' "expectations"): reacting to it
    would reconcile once more for nothing. The event can arrive before the write's response does, so a write is
    marked in flight from before its request is sent until its version is recorded, and `produced` can wait for
    it. The last RECENT versions are kept per object written, for events that arrive after a later write.
    """

    RECENT = 4

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._versions: dict[tuple[str, str, str], tuple[str, ...]] = {}  # a tuple: a deque takes 600 bytes
        self._in_flight: dict[tuple[str, str, str], int] = {}

    @contextmanager
    def writing(self, kind: str, namespace: str, name: str) -> Iterator[None]:
        key = (kind, namespace, name)
        with self._changed:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            yield
        finally:
            with self._changed:
                self._in_flight[key] -= 1
                if not self._in_flight[key]:
                    del self._in_flight[key]
                self._changed.notify_all()

    def record(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        version = meta.get("resourceVersion")
        if version:
            key = (kind, meta.get("namespace") or "", meta.get("name") or "")
            with self._changed:
                self._versions[key] = (*self._versions.get(key, ())[1 - self.RECENT :], str(version))

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._changed:
            self._versions.pop((kind, namespace, name), None)

    def produced(self, kind: str, namespace: str, name: str, resource_version: str, wait: float = 0.0) -> bool:
        """Whether one of our latest writes of the object left `resource_version`, after waiting up to `wait`
        seconds for a write of it still in flight."""
        key = (kind, namespace, name)
        with self._changed:
            if wait > 0:
                self._changed.wait_for(lambda: key not in self._in_flight, timeout=wait)
            return resource_version in self._versions.get(key, ())


Key = tuple[str, str, str]


class Known:
    """The last state of each watched object the client read or wrote, kept current by the watch (thread-safe).

    Only objects the client itself asked for are kept (never the rest of what a watch lists), and only those
    carrying the watch's `labels` (its label selector: an object without them, like a MemoryStore's admin Secret,
    is never reported and is read every time), without their managedFields. A response is kept only if no watch
    event of the object arrived while its request was on the way (the event may be newer than the response); a
    deleted object is forgotten, never remembered as absent (a foreign object at our name is not labelled, so no
    watch would tell of it). An entry older than MAX_AGE is read again, in case a watch ever missed an event.
    Beside it, a digest of the body of the client's last apply of each object and the version that apply produced:
    an apply that would send the same body again is skipped.

    Objects are kept as compressed JSON and parsed again on each `get` (which returns a fresh copy anyway): a
    parsed CronJob takes about 7 KiB, a Secret 3 KiB, and the operator keeps five children a tenant (BENCHMARKS.md).
    """

    MAX_AGE = 600.0

    def __init__(
        self, watched: frozenset[str], labels: dict[str, str] | None = None, clock: Any = time.monotonic
    ) -> None:
        self.watched, self.labels, self._clock = watched, dict(labels or {}), clock
        self._lock = threading.Lock()
        self._entries: dict[Key, _Entry] = {}  # one record an object: a fleet has five children a tenant

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get((kind, namespace, name))
            at, packed = (0.0, None) if entry is None else (entry.at, entry.packed)
        if packed is None or self._clock() - at > self.MAX_AGE:
            return None
        return _unpacked(packed)

    def mark(self, kind: str, namespace: str, name: str) -> int:
        """Before a request: how many watch events of the object had arrived (`keep` compares)."""
        with self._lock:  # from now on its watch events count, even before anything of it is kept
            entry = self._entries.setdefault((kind, namespace, name), _Entry())
            if entry.events is None:
                entry.events = 0
            return entry.events

    def keep(self, kind: str, obj: dict[str, Any], mark: int, applied: dict[str, Any] | None = None) -> None:
        """Remember `obj` as a response read or written (with the body `applied`, if an apply)."""
        if kind not in self.watched:
            return
        meta = obj.get("metadata") or {}
        key = (kind, meta.get("namespace") or "", meta.get("name") or "")
        digest = None if applied is None else _digest(applied)
        packed = _packed(obj) if self._selected(obj) else None
        with self._lock:
            entry = self._entries.get(key)
            if digest is not None:
                entry = self._entries.setdefault(key, _Entry())
                entry.version, entry.digest = str(meta.get("resourceVersion") or ""), digest
            if packed is not None and (0 if entry is None else entry.events or 0) == mark:
                entry = self._entries.setdefault(key, _Entry())
                entry.at, entry.packed = self._clock(), packed

    def observe(self, kind: str, type_: str | None, body: dict[str, Any]) -> None:
        """A watch event: the object as it is now, or gone."""
        meta = body.get("metadata") or {}
        key = (kind, meta.get("namespace") or "", meta.get("name") or "")
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or (entry.packed is None and entry.events is None):
                return  # never asked for: not ours to remember
        kept = type_ != "DELETED" and self._selected(body)
        packed = _packed(body) if kept else None  # outside the lock: compressing takes a few dozen microseconds
        with self._lock:
            entry = self._entries.setdefault(key, entry)
            entry.events = (entry.events or 0) + 1
            entry.at, entry.packed = self._clock(), packed

    def _selected(self, obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels.items())

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            entry = self._entries.setdefault((kind, namespace, name), _Entry())
            entry.packed, entry.version, entry.digest = None, "", None
            entry.events = (entry.events or 0) + 1

    def applied(self, kind: str, current: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
        """Whether applying `desired` would change nothing: the client's last apply of the object sent exactly
        `desired`, and `current` is what it produced or still holds every field of it (the cluster may have added
        defaults or status). Fields the last apply dropped are covered because its body was this same one."""
        if current is None:
            return False
        meta = current.get("metadata") or {}
        key = (kind, meta.get("namespace") or "", meta.get("name") or "")
        with self._lock:
            entry = self._entries.get(key)
            version, digest = ("", None) if entry is None else (entry.version, entry.digest)
        return (
            digest is not None
            and digest == _digest(desired)
            and (version == str(meta.get("resourceVersion") or "") or _holds(current, desired))
        )


class _Entry:
    """What `Known` holds of one object: its watch events counted since the first `mark` (None: never marked),
    the object as last known (`packed`, None: nothing) and since when, and its last apply's version and digest."""

    __slots__ = ("at", "digest", "events", "packed", "version")

    def __init__(self) -> None:
        self.events: int | None = None
        self.at = 0.0
        self.packed: bytes | None = None
        self.version = ""
        self.digest: bytes | None = None


#: how often the client's token refresh hook runs at most (see _throttle_token_refresh)
TOKEN_REFRESH_INTERVAL = 1.0


def _throttle_token_refresh(configuration: Any) -> None:
    """Run the configuration's token refresh hook at most once per TOKEN_REFRESH_INTERVAL, not before every request.

    Both of the kubernetes library's loaders install a hook that re-applies the whole configuration (host, TLS and a
    scan of the environment for proxies) on every request, a few per cent of the operator's CPU while provisioning
    (BENCHMARKS.md); the token itself is only re-read once expired (kubeconfig: 5 minutes before its expiry;
    in-cluster: the token file once a minute), so a second's delay changes nothing.
    """
    hook = getattr(configuration, "refresh_api_key_hook", None)
    if hook is None:
        return
    lock, last = threading.Lock(), [float("-inf")]

    def refresh(config: Any) -> None:
        with lock:
            now = time.monotonic()
            if now - last[0] < TOKEN_REFRESH_INTERVAL:
                return
            hook(config)
            last[0] = now

    configuration.refresh_api_key_hook = refresh


def _packed(obj: dict[str, Any]) -> bytes:
    """The object without its managedFields, as compressed JSON (`_unpacked` parses it back)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return zlib.compress(json.dumps(obj, separators=(",", ":")).encode(), 1)


def _unpacked(packed: bytes) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(zlib.decompress(packed)))


def _digest(body: dict[str, Any]) -> bytes:
    """Equal for equal bodies (keys in any order): what `Known.applied` compares instead of keeping the body."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).digest()


def _holds(actual: Any, wanted: Any) -> bool:
    """Whether `actual` has every field of `wanted` with the same value (lists element by element)."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(k in actual and _holds(actual[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(actual, list) and len(actual) == len(wanted) and all(map(_holds, actual, wanted))
    return bool(actual == wanted)


class KubeClient:
    """Thin, typed wrapper; every method returns the API's JSON as dicts (None for 404 on reads).

    `watched`: the kinds ("Secret", "CronJob") whose objects carrying `labels` a watch reports to `observe`;
    those are read from memory once known (`Known`). Anything else is read from the API server every time.
    """

    def __init__(
        self, api_client: k8s.ApiClient, watched: frozenset[str] = frozenset(), labels: dict[str, str] | None = None
    ) -> None:
        _throttle_token_refresh(api_client.configuration)
        self._core = k8s.CoreV1Api(api_client)
        self._batch = k8s.BatchV1Api(api_client)
        self._custom = k8s.CustomObjectsApi(api_client)
        self.own_writes = OwnWrites()
        self.known = Known(watched, labels)

    def observe(self, kind: str, type_: str | None, body: dict[str, Any]) -> None:
        """A watch event of a watched kind (the handlers pass each one): what is known of the object follows it."""
        self.known.observe(kind, type_, body)

    def applied(self, kind: str, current: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
        """Whether applying `desired` over `current` would change nothing (see `Known.applied`)."""
        return self.known.applied(kind, current, desired)

    def wrote(self, kind: str, namespace: str, name: str, resource_version: str, wait: float = 0.0) -> bool:
        """Whether `kind` `namespace/name` at `resource_version` is what this client's own latest write left
        (waiting up to `wait` seconds for a write of it still in flight)."""
        return self.own_writes.produced(kind, namespace, name, resource_version, wait)

    @classmethod
    def from_environment(
        cls, watched: frozenset[str] = frozenset(), labels: dict[str, str] | None = None
    ) -> KubeClient:
        """In-cluster config when running in a Pod, else KUBECONFIG / ~/.kube/config (`config.api_client`)."""
        return cls(api_client(), watched, labels)

    @staticmethod
    def _json(response: Any) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(response.data))

    # Secrets -------------------------------------------------------------------------------------------

    def _read(self, read: Any, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """GET one namespaced object with `read` (the typed client's read method); None when absent. A watched
        kind's object already known is not read again."""
        if kind in self.known.watched:
            known = self.known.get(kind, namespace, name)
            if known is not None:
                return known
        mark = self.known.mark(kind, namespace, name)
        try:
            found = self._json(read(name, namespace, _preload_content=False))
            self.known.keep(kind, found, mark)
            return found
        except ApiException as exc:
            if exc.status == 404:
                return None
            _raise(exc, f"reading {kind} {namespace}/{name}")
            raise  # unreachable, for type checkers

    def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        # By name: no code here lists Secrets (a list returns every Secret's data); only kopf's watch of those the
        # operator wrote does, through the label selector, and not at all under --no-watch-secrets.
        return self._read(self._core.read_namespaced_secret, "Secret", namespace, name)

    def create_secret(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create-only: the caller learns (AlreadyExists) if someone else wrote it first."""
        meta = body["metadata"]
        mark = self.known.mark("Secret", meta["namespace"], meta["name"])
        with self.own_writes.writing("Secret", meta["namespace"], meta["name"]):
            try:
                created = self._json(
                    self._core.create_namespaced_secret(
                        meta["namespace"], cast(Any, body), field_manager=FIELD_MANAGER, _preload_content=False
                    )
                )
            except ApiException as exc:
                _raise(exc, f"creating Secret {meta['namespace']}/{meta['name']}")
                raise
            self.own_writes.record("Secret", created)
            self.known.keep("Secret", created, mark)
        return created

    def apply_secret(self, body: dict[str, Any]) -> None:
        self._apply(self._core.patch_namespaced_secret, body)

    def orphan_secret(self, namespace: str, name: str) -> None:
        """Drop ownerReferences so the Secret outlives its owner (deletionPolicy Retain keeps the keyring)."""
        patch = {"metadata": {"ownerReferences": None}}
        self.known.forget("Secret", namespace, name)
        try:
            self._core.patch_namespaced_secret(name, namespace, patch, _content_type=_MERGE, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                _raise(exc, f"orphaning Secret {namespace}/{name}")

    def delete_secret(self, namespace: str, name: str) -> None:
        self.own_writes.forget("Secret", namespace, name)
        self.known.forget("Secret", namespace, name)
        try:
            self._core.delete_namespaced_secret(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                _raise(exc, f"deleting Secret {namespace}/{name}")

    def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(self._core.read_namespaced_config_map, "ConfigMap", namespace, name)

    def apply_configmap(self, body: dict[str, Any]) -> None:
        self._apply(self._core.patch_namespaced_config_map, body)

    def get_service_account(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(self._core.read_namespaced_service_account, "ServiceAccount", namespace, name)

    def create_service_account(self, body: dict[str, Any]) -> None:
        """Create-only (AlreadyExists when someone else wrote it first)."""
        meta = body["metadata"]
        try:
            self._core.create_namespaced_service_account(
                meta["namespace"], cast(Any, body), field_manager=FIELD_MANAGER, _preload_content=False
            )
        except ApiException as exc:
            _raise(exc, f"creating ServiceAccount {meta['namespace']}/{meta['name']}")

    # CronJobs ------------------------------------------------------------------------------------------------

    def get_cronjob(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read(self._batch.read_namespaced_cron_job, "CronJob", namespace, name)

    def apply_cronjob(self, body: dict[str, Any]) -> None:
        self._apply(self._batch.patch_namespaced_cron_job, body)

    def _apply(self, patch: Any, body: dict[str, Any]) -> None:
        """Server-side apply of a whole namespaced object with `patch` (the typed client's patch method)."""
        meta = body["metadata"]
        mark = self.known.mark(body["kind"], meta["namespace"], meta["name"])
        with self.own_writes.writing(body["kind"], meta["namespace"], meta["name"]):
            try:
                response = patch(
                    meta["name"],
                    meta["namespace"],
                    body,
                    field_manager=FIELD_MANAGER,
                    force=True,
                    _content_type=_APPLY,
                    _preload_content=False,
                )
            except ApiException as exc:
                _raise(exc, f"applying {body['kind']} {meta['namespace']}/{meta['name']}")
            written = self._json(response)
            self.own_writes.record(body["kind"], written)
            self.known.keep(body["kind"], written, mark, applied=body)

    # Our custom objects -------------------------------------------------------------------------------

    def get_cluster_object(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            return self._json(
                self._custom.get_cluster_custom_object(GROUP, VERSION, plural, name, _preload_content=False)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            _raise(exc, f"reading {plural}/{name}")
            raise

    def list_cluster_objects(self, plural: str) -> list[dict[str, Any]]:
        try:
            response = self._custom.list_cluster_custom_object(GROUP, VERSION, plural, _preload_content=False)
        except ApiException as exc:
            _raise(exc, f"listing {plural}")
        return cast(list[dict[str, Any]], self._json(response).get("items", []))

    def annotate_namespaced_object(self, plural: str, namespace: str, name: str, annotations: dict[str, str]) -> bool:
        """Merge-patch annotations onto one of our namespaced objects; False when it is gone."""
        body = {"metadata": {"annotations": annotations}}
        try:
            self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, body, _content_type=_MERGE, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            _raise(exc, f"annotating {plural} {namespace}/{name}")
        return True

    def annotate_cluster_object(self, plural: str, name: str, annotations: dict[str, str]) -> bool:
        """Merge-patch annotations onto one of our cluster-scoped objects; False when it is gone."""
        body = {"metadata": {"annotations": annotations}}
        try:
            self._custom.patch_cluster_custom_object(
                GROUP, VERSION, plural, name, body, _content_type=_MERGE, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            _raise(exc, f"annotating {plural}/{name}")
        return True

    def patch_namespaced_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any], resource_version: str | None
    ) -> bool:
        """Merge-patch `.status` through the status subresource (used outside kopf's own patching), only if the
        object is still at `resource_version` when one is given. False when it changed meanwhile or is gone:
        whoever changed it reconciles it from the newer state."""
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, body, _preload_content=False
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            _raise(exc, f"patching status of {plural} {namespace}/{name}")
        return True
