"""What the plugin reads from the Kubernetes API, with the user's kubeconfig (as kubectl does). Reads only."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar, cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from memory_operator.api.v1alpha1 import GROUP, VERSION
from memory_operator.builders.meta import MANAGED_BY, MANAGED_BY_LABEL

__all__ = ["Kube", "NotFoundError", "current_namespace"]

MANAGED = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
T = TypeVar("T")


class NotFoundError(LookupError):
    """The object asked for does not exist (exit code 3)."""


def current_namespace(context: str | None = None) -> str:
    """The namespace of the kubeconfig's current context, as kubectl picks it ("default" if it names none)."""
    try:
        contexts, active = k8s_config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
    except (k8s_config.ConfigException, OSError):
        return "default"
    chosen = next((c for c in contexts or () if c.get("name") == context), None) if context else active
    return str((chosen or {}).get("context", {}).get("namespace") or "default")


class Kube:
    def __init__(self, context: str | None = None) -> None:
        api = k8s_config.new_client_from_config(context=context)  # type: ignore[no-untyped-call]
        self._custom = k8s.CustomObjectsApi(api)
        self._core = k8s.CoreV1Api(api)
        self._batch = k8s.BatchV1Api(api)

    def tenant(self, namespace: str, name: str) -> dict[str, Any]:
        read = self._custom.get_namespaced_custom_object
        found = _found(
            lambda: read(GROUP, VERSION, namespace, "memorytenants", name), f"memorytenant {namespace}/{name}"
        )
        return cast(dict[str, Any], found)

    def tenants(self, namespace: str | None) -> list[dict[str, Any]]:
        if namespace is None:
            found = self._custom.list_cluster_custom_object(GROUP, VERSION, "memorytenants")
        else:
            found = self._custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "memorytenants")
        return list(cast(dict[str, Any], found).get("items", []))

    def store(self, name: str) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], self._custom.get_cluster_custom_object(GROUP, VERSION, "memorystores", name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def secret_names(self, namespace: str) -> set[str]:
        """The operator's Secrets in the namespace, by name (their data is not kept)."""
        listed = self._core.list_namespaced_secret(namespace, label_selector=MANAGED)
        return {str(item.metadata.name) for item in listed.items if item.metadata}

    def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        secret = _found(lambda: self._core.read_namespaced_secret(name, namespace), f"secret {namespace}/{name}")
        return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}

    def cronjobs(self, namespace: str) -> dict[str, dict[str, Any]]:
        """The operator's CronJobs in the namespace: name -> schedule, timeZone, suspend, lastScheduleTime."""
        listed = self._batch.list_namespaced_cron_job(namespace, label_selector=MANAGED)
        return {
            str(item.metadata.name): {
                "schedule": item.spec.schedule,
                "timeZone": item.spec.time_zone,
                "suspend": bool(item.spec.suspend),
                "lastScheduleTime": item.status.last_schedule_time.isoformat()
                if item.status and item.status.last_schedule_time
                else None,
            }
            for item in listed.items
            if item.metadata
        }

    def configmap(self, namespace: str, name: str) -> dict[str, str]:
        found = _found(lambda: self._core.read_namespaced_config_map(name, namespace), f"configmap {namespace}/{name}")
        return dict(found.data or {})


def _found(read: Callable[[], T], what: str) -> T:
    """`read()`, with a 404 as NotFoundError naming `what`."""
    try:
        return read()
    except ApiException as exc:
        if exc.status == 404:
            raise NotFoundError(f"{what} not found") from None
        raise
