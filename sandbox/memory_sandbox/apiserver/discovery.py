"""Legacy discovery documents (`/api`, `/apis`, APIResourceList) and `/version`, built from the registry.

Aggregated discovery (apidiscovery.k8s.io/v2) is deliberately not served: clients that ask for it get
the legacy documents with `Content-Type: application/json`, which client-go (kubectl) recognises and
then walks the group-versions one request each, as with any pre-1.26 server.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .resources import VERBS, Registry, ResourceType

__all__ = ["SERVER_VERSION", "api_group", "api_group_list", "api_resource_list", "api_versions", "version_info"]

JsonObj = dict[str, Any]
SERVER_VERSION = {"major": "1", "minor": "34"}


def version_info() -> JsonObj:
    return {
        **SERVER_VERSION,
        "gitVersion": f"v{SERVER_VERSION['major']}.{SERVER_VERSION['minor']}.0-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> JsonObj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str, versions: list[str]) -> JsonObj:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> JsonObj:
    groups = [_group(name, versions) for name, versions in sorted(registry.group_versions().items()) if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, name: str) -> JsonObj | None:
    versions = registry.group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _resource_entries(rtype: ResourceType, version: str) -> list[JsonObj]:
    main: JsonObj = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(VERBS),
        "storageVersionHash": hashlib.sha256(f"{rtype.qualified}/{version}".encode()).hexdigest()[:12],
    }
    if rtype.short_names:
        main["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        main["categories"] = list(rtype.categories)
    entries = [main]
    vdef = rtype.version(version)
    if vdef is not None and vdef.status_subresource:
        entries.append(
            {
                "name": f"{rtype.plural}/status",
                "singularName": "",
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return entries


def api_resource_list(registry: Registry, group: str, version: str) -> JsonObj | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    group_version = f"{group}/{version}" if group else version
    resources = [entry for rtype in types for entry in _resource_entries(rtype, version)]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}
