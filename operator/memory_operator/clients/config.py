"""Where the operator's Kubernetes clients connect: in-cluster config in a Pod, else KUBECONFIG / ~/.kube/config."""

from __future__ import annotations

from kubernetes import client as k8s
from kubernetes import config as k8s_config

__all__ = ["api_client"]


def api_client() -> k8s.ApiClient:
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
    return k8s.ApiClient()
