"""The Kubernetes API as the reconcilers need it: Secrets and our custom objects, as plain dicts.

The only module besides kopf itself that talks to the API server. Writes use server-side apply with one
field manager, so re-applying the whole desired object is the idempotent way to converge. The client remembers
the resourceVersion each of its writes produced (`wrote`), so a watch can tell its own echo from someone's edit.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from memory_operator.api.v1alpha1 import GROUP, VERSION

__all__ = ["FIELD_MANAGER", "AlreadyExists", "KubeClient", "KubeError", "OwnWrites"]

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
        self._versions: dict[tuple[str, str, str], deque[str]] = {}
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
                self._versions.setdefault(key, deque(maxlen=self.RECENT)).append(str(version))

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


class KubeClient:
    """Thin, typed wrapper; every method returns the API's JSON as dicts (None for 404 on reads)."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self._core = k8s.CoreV1Api(api_client)
        self._batch = k8s.BatchV1Api(api_client)
        self._custom = k8s.CustomObjectsApi(api_client)
        self.own_writes = OwnWrites()

    def wrote(self, kind: str, namespace: str, name: str, resource_version: str, wait: float = 0.0) -> bool:
        """Whether `kind` `namespace/name` at `resource_version` is what this client's own latest write left
        (waiting up to `wait` seconds for a write of it still in flight)."""
        return self.own_writes.produced(kind, namespace, name, resource_version, wait)

    @classmethod
    def from_environment(cls) -> KubeClient:
        """In-cluster config when running in a Pod, else KUBECONFIG / ~/.kube/config."""
        try:
            k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException:
            k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
        return cls(k8s.ApiClient())

    @staticmethod
    def _json(response: Any) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(response.data))

    # Secrets -------------------------------------------------------------------------------------------

    def _read(self, read: Any, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """GET one namespaced object with `read` (the typed client's read method); None when absent."""
        try:
            return self._json(read(name, namespace, _preload_content=False))
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
        return created

    def apply_secret(self, body: dict[str, Any]) -> None:
        self._apply(self._core.patch_namespaced_secret, body)

    def orphan_secret(self, namespace: str, name: str) -> None:
        """Drop ownerReferences so the Secret outlives its owner (deletionPolicy Retain keeps the keyring)."""
        patch = {"metadata": {"ownerReferences": None}}
        try:
            self._core.patch_namespaced_secret(name, namespace, patch, _content_type=_MERGE, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                _raise(exc, f"orphaning Secret {namespace}/{name}")

    def delete_secret(self, namespace: str, name: str) -> None:
        self.own_writes.forget("Secret", namespace, name)
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
            self.own_writes.record(body["kind"], self._json(response))

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
