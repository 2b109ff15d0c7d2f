"""The Kubernetes API as the reconcilers need it: Secrets and our custom objects, as plain dicts.

The only module besides kopf itself that talks to the API server. Writes use server-side apply with one
field manager, so re-applying the whole desired object is the idempotent way to converge.
"""

from __future__ import annotations

import json
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from memory_operator.api.v1alpha1 import GROUP, VERSION

__all__ = ["FIELD_MANAGER", "AlreadyExists", "KubeClient", "KubeError"]

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


class KubeClient:
    """Thin, typed wrapper; every method returns the API's JSON as dicts (None for 404 on reads)."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self._core = k8s.CoreV1Api(api_client)
        self._batch = k8s.BatchV1Api(api_client)
        self._custom = k8s.CustomObjectsApi(api_client)

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
        # By name only: the operator never lists Secrets (a list returns every Secret's data).
        return self._read(self._core.read_namespaced_secret, "Secret", namespace, name)

    def create_secret(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create-only: the caller learns (AlreadyExists) if someone else wrote it first."""
        meta = body["metadata"]
        try:
            return self._json(
                self._core.create_namespaced_secret(
                    meta["namespace"], cast(Any, body), field_manager=FIELD_MANAGER, _preload_content=False
                )
            )
        except ApiException as exc:
            _raise(exc, f"creating Secret {meta['namespace']}/{meta['name']}")
            raise

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
        try:
            patch(
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

    def get_namespaced_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._json(
                self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, name, _preload_content=False
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            _raise(exc, f"reading {plural} {namespace}/{name}")
            raise

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
