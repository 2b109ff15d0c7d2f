"""A kubeconfig pointing kubectl, kopf and the `kubernetes` client at the sandbox API."""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["kubeconfig_document", "write_kubeconfig"]

CONTEXT = "sandbox"
TOKEN = "sandbox-token"  # noqa: S105 - a placeholder: the sandbox API authenticates nobody


def kubeconfig_document(url: str, *, context: str = CONTEXT, namespace: str = "default") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {"token": TOKEN}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(path: str | Path, url: str, *, context: str = CONTEXT, namespace: str = "default") -> Path:
    """Write the kubeconfig atomically (a reader polling for the file never sees half of it)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(yaml.safe_dump(kubeconfig_document(url, context=context, namespace=namespace), sort_keys=False))
    partial.chmod(0o600)
    partial.replace(target)
    return target
