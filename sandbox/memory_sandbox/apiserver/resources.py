"""What the server serves: resource types (built-in and learned from CRDs) and the registry of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUILTINS", "CRD_KEY", "NAMESPACE_KEY", "Registry", "ResourceKey", "ResourceType", "VersionDef"]

JsonObj = dict[str, Any]
ResourceKey = tuple[str, str]
"""(group, plural): objects are stored once per resource, whatever version a client asks for."""

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class VersionDef:
    """One served version of a resource: its schema, printer columns and whether `/status` exists."""

    name: str
    schema: JsonObj | None = None
    columns: tuple[JsonObj, ...] = ()
    status_subresource: bool = False


@dataclass(frozen=True)
class ResourceType:
    group: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    versions: tuple[VersionDef, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    builtin: bool = True

    @property
    def key(self) -> ResourceKey:
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        """`plural.group`, the name errors and CRDs use."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_version(self) -> str:
        return self.versions[0].name

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    def version(self, name: str) -> VersionDef | None:
        return next((v for v in self.versions if v.name == name), None)


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    categories: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        group=group,
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        versions=(VersionDef(version, status_subresource=status),),
        short_names=short,
        categories=categories,
    )


BUILTINS: tuple[ResourceType, ...] = (
    _builtin("", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",), status=True),
    _builtin("", "v1", "secrets", "Secret"),
    _builtin("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _builtin("", "v1", "events", "Event", short=("ev",)),
    _builtin("", "v1", "services", "Service", short=("svc",), status=True, categories=("all",)),
    _builtin("events.k8s.io", "v1", "events", "Event", short=("ev",)),
    _builtin("batch", "v1", "jobs", "Job", status=True, categories=("all",)),
    _builtin("batch", "v1", "cronjobs", "CronJob", short=("cj",), status=True, categories=("all",)),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease"),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short=("crd", "crds"),
        status=True,
        categories=("api-extensions",),
    ),
)
NAMESPACE_KEY: ResourceKey = ("", "namespaces")
CRD_KEY: ResourceKey = ("apiextensions.k8s.io", "customresourcedefinitions")


@dataclass
class Registry:
    """Resource types by key and by (group, version, plural); learned CRDs come and go at runtime."""

    _types: dict[ResourceKey, ResourceType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rtype in BUILTINS:
            self.add(rtype)

    def add(self, rtype: ResourceType) -> None:
        self._types[rtype.key] = rtype

    def remove(self, key: ResourceKey) -> ResourceType | None:
        return self._types.pop(key, None)

    def get(self, key: ResourceKey) -> ResourceType | None:
        return self._types.get(key)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        rtype = self._types.get((group, plural))
        return rtype if rtype is not None and rtype.version(version) is not None else None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        return next(
            (t for t in self._types.values() if t.group == group and t.kind == kind and t.version(version)),
            None,
        )

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def group_versions(self) -> dict[str, list[str]]:
        """Group -> served versions, preferred first; the core group is the empty string."""
        result: dict[str, list[str]] = {}
        for rtype in self._types.values():
            versions = result.setdefault(rtype.group, [])
            versions.extend(v.name for v in rtype.versions if v.name not in versions)
        return result

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self._types.values() if t.group == group and t.version(version) is not None]


def from_crd(crd: JsonObj) -> ResourceType:
    """The resource a CustomResourceDefinition declares (served versions only, storage version first)."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    served = [v for v in spec.get("versions", []) if v.get("served", True)]
    served.sort(key=lambda v: not v.get("storage", False))
    return ResourceType(
        group=spec.get("group", ""),
        plural=names.get("plural", ""),
        singular=names.get("singular") or names.get("kind", "").lower(),
        kind=names.get("kind", ""),
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        versions=tuple(_crd_version(v) for v in served),
        short_names=tuple(names.get("shortNames", ())),
        categories=tuple(names.get("categories", ())),
        builtin=False,
    )


def _crd_version(version: JsonObj) -> VersionDef:
    return VersionDef(
        name=version.get("name", ""),
        schema=(version.get("schema") or {}).get("openAPIV3Schema"),
        columns=tuple(version.get("additionalPrinterColumns", ())),
        status_subresource="status" in (version.get("subresources") or {}),
    )
