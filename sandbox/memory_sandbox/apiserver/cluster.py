"""The API's state machine, free of HTTP: create, read, update, patch, apply and delete objects.

`Cluster` owns the registry of resource types and the store; it assigns server-owned metadata, enforces
optimistic concurrency, applies status-subresource rules, learns CRDs and, through `lifecycle`,
runs finalizers, namespace deletion and ownerReference garbage collection.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import errors, lifecycle
from .admission import FIELD_VALIDATION, admit, crd_status
from .clock import now
from .patch import (
    ApiTestFailed,
    applied_paths,
    apply_config,
    fields_v1,
    json_patch,
    merge_patch,
    paths_from_fields_v1,
    strategic_merge,
)
from .resources import CRD_KEY, NAMESPACE_KEY, Registry, ResourceType, from_crd
from .selectors import Selector
from .storage import Store

__all__ = ["Cluster", "ListResult", "WriteOptions"]

JsonObj = dict[str, Any]
SERVER_OWNED = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand: no vowels


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Warn"
    field_manager: str = ""
    force: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class ListResult:
    items: list[JsonObj]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


@dataclass
class Cluster:
    validate_schemas: bool = True
    history: int = 10_000
    registry: Registry = field(default_factory=Registry)
    store: Store = field(init=False)

    def __post_init__(self) -> None:
        self.store = Store(self.history)
        namespaces = self.registry.get(NAMESPACE_KEY)
        assert namespaces is not None
        for name in INITIAL_NAMESPACES:
            self.create(namespaces, "v1", "", {"metadata": {"name": name}}, WriteOptions())

    # -- reads -------------------------------------------------------------------------------------
    def get(self, rtype: ResourceType, namespace: str, name: str) -> JsonObj:
        obj = self.store.get(rtype.key, namespace, name)
        if obj is None:
            raise errors.not_found(rtype.qualified, name)
        return obj

    def list_objects(
        self,
        rtype: ResourceType,
        namespace: str | None,
        selectors: list[Selector],
        limit: int = 0,
        continue_token: str = "",
    ) -> ListResult:
        objects = sorted(
            self.store.items(rtype.key, namespace),
            key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
        )
        matching = [o for o in objects if all(select(o) for select in selectors)]
        rv, start = self._continue_from(continue_token)
        if start is not None:
            matching = [o for o in matching if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start]
        if not limit or len(matching) <= limit:
            return ListResult(matching, rv or str(self.store.resource_version))
        page, last = matching[:limit], matching[limit - 1]["metadata"]
        token = json.dumps(
            {"rv": rv or str(self.store.resource_version), "start": [last.get("namespace", ""), last["name"]]}
        )
        return ListResult(page, rv or str(self.store.resource_version), _b64(token), len(matching) - limit)

    @staticmethod
    def _continue_from(token: str) -> tuple[str, tuple[str, str] | None]:
        if not token:
            return "", None
        try:
            decoded = json.loads(_unb64(token))
            return str(decoded["rv"]), (str(decoded["start"][0]), str(decoded["start"][1]))
        except (ValueError, KeyError, IndexError, TypeError):
            raise errors.bad_request("invalid continue token") from None

    # -- create ------------------------------------------------------------------------------------
    def create(self, rtype: ResourceType, version: str, namespace: str, body: Any, opts: WriteOptions) -> JsonObj:
        obj = self._checked_body(rtype, version, body)
        meta = obj["metadata"]
        meta["name"] = self._choose_name(rtype, namespace, meta)
        self._check_namespace(rtype, namespace, meta)
        if meta.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        if self.store.get(rtype.key, namespace, meta["name"]) is not None:
            raise errors.already_exists(rtype.qualified, meta["name"])
        vdef = rtype.version(version)
        if vdef is not None and vdef.status_subresource and rtype.key != NAMESPACE_KEY:
            obj.pop("status", None)
        obj = self._admit(rtype, version, obj, opts)
        meta = obj["metadata"]
        for key in (*SERVER_OWNED, "resourceVersion", "selfLink"):
            meta.pop(key, None)
        stamp = now()
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=stamp, generation=1)
        if rtype.key == CRD_KEY:
            obj["status"] = crd_status(obj, stamp)
        if opts.dry_run:
            return obj
        stored = self.store.put(rtype.key, obj, None)
        self._learn(rtype, stored)
        return stored

    def _checked_body(self, rtype: ResourceType, version: str, body: Any) -> JsonObj:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        expected = rtype.api_version(version)
        if obj.setdefault("apiVersion", expected) != expected:
            raise errors.bad_request(
                f"the API version in the data ({obj['apiVersion']}) does not match "
                f"the expected API version ({expected})"
            )
        if obj.setdefault("kind", rtype.kind) != rtype.kind:
            raise errors.bad_request(
                f"the kind in the data ({obj['kind']}) does not match the expected kind ({rtype.kind})"
            )
        if not isinstance(obj.setdefault("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")
        # Conventional key order, so `-o json` and watch events read like a real server's.
        return {"apiVersion": obj.pop("apiVersion"), "kind": obj.pop("kind"), "metadata": obj.pop("metadata"), **obj}

    def _choose_name(self, rtype: ResourceType, namespace: str, meta: JsonObj) -> str:
        name = meta.get("name") or ""
        if not name and meta.get("generateName"):
            base = str(meta["generateName"])[:58]
            for _ in range(8):
                name = base + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
                if self.store.get(rtype.key, namespace, name) is None:
                    break
        if not name:
            cause = {
                "reason": "FieldValueRequired",
                "message": "Required value: name or generateName is required",
                "field": "metadata.name",
            }
            raise errors.invalid(rtype.kind, rtype.group, "", [cause])
        return str(name)  # its format and length are checked at admission, with the other ObjectMeta rules

    def _check_namespace(self, rtype: ResourceType, namespace: str, meta: JsonObj) -> None:
        if not rtype.namespaced:
            meta.pop("namespace", None)
            return
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace
        ns = self.store.get(NAMESPACE_KEY, "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            why = f"unable to create new content in namespace {namespace} because it is being terminated"
            raise errors.forbidden(rtype.qualified, meta["name"], why)

    def _admit(
        self, rtype: ResourceType, version: str, obj: JsonObj, opts: WriteOptions, old: JsonObj | None = None
    ) -> JsonObj:
        if opts.field_validation not in FIELD_VALIDATION:
            raise errors.bad_request(f"fieldValidation must be one of {', '.join(FIELD_VALIDATION)}")
        admitted = admit(
            rtype, version, obj, old=old, schemas=self.validate_schemas, field_validation=opts.field_validation
        )
        opts.warnings.extend(admitted.warnings)
        return admitted.obj

    def _learn(self, rtype: ResourceType, crd: JsonObj) -> None:
        """A stored CRD (re)defines its resource at once: no Established delay in the sandbox."""
        if rtype.key != CRD_KEY:
            return
        learned = from_crd(crd)
        existing = self.registry.get(learned.key)
        if existing is None or not existing.builtin:
            self.registry.add(learned)

    # -- update / patch / apply --------------------------------------------------------------------
    def replace(
        self,
        rtype: ResourceType,
        version: str,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions,
        subresource: str = "",
    ) -> JsonObj:
        existing = self.get(rtype, namespace, name)
        new = self._checked_body(rtype, version, body)
        return self._update(rtype, version, existing, new, opts, subresource)

    def patch(
        self,
        rtype: ResourceType,
        version: str,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        opts: WriteOptions,
        subresource: str = "",
    ) -> JsonObj:
        if content_type == "application/apply-patch+yaml":
            return self._apply(rtype, version, namespace, name, _parse_yaml(raw), opts, subresource)
        existing = self.get(rtype, namespace, name)
        document = _parse_json(raw)
        base = {**existing, "apiVersion": rtype.api_version(version)}
        patched = self._patched(rtype, base, content_type, document)
        return self._update(rtype, version, existing, self._checked_body(rtype, version, patched), opts, subresource)

    @staticmethod
    def _patched(rtype: ResourceType, base: JsonObj, content_type: str, document: Any) -> Any:
        if content_type == "application/merge-patch+json":
            return merge_patch(base, document)
        if content_type == "application/json-patch+json":
            try:
                return json_patch(base, document)
            except ApiTestFailed as exc:
                raise errors.ApiError(422, "Invalid", str(exc)) from None
        if content_type == "application/strategic-merge-patch+json":
            if not rtype.builtin:
                raise errors.ApiError(
                    415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources"
                )
            return strategic_merge(base, document)
        raise errors.unsupported_media_type(content_type)

    def _apply(
        self,
        rtype: ResourceType,
        version: str,
        namespace: str,
        name: str,
        config: Any,
        opts: WriteOptions,
        subresource: str,
    ) -> JsonObj:
        if not opts.field_manager:
            cause = {
                "reason": "FieldValueRequired",
                "message": "Required value: is required for apply patch",
                "field": "fieldManager",
            }
            raise errors.invalid(rtype.kind, rtype.group, name, [cause])
        if not isinstance(config, dict) or not config.get("apiVersion") or not config.get("kind"):
            raise errors.bad_request("apiVersion and kind must be set in an apply configuration")
        config = self._checked_body(rtype, version, config)
        if config["metadata"].setdefault("name", name) != name:
            raise errors.bad_request("the name of the object does not match the name on the URL")
        existing = self.store.get(rtype.key, namespace, name)
        owned = {opts.field_manager: applied_paths(config)}
        if existing is None:
            if subresource:
                raise errors.not_found(rtype.qualified, name)
            config["metadata"]["managedFields"] = _managed_entries(owned, {}, rtype.api_version(version))
            return self.create(rtype, version, namespace, config, opts)
        managers = _owned_paths(existing)
        self._resolve_conflicts(rtype, existing, config, managers, opts)
        base = {**existing, "apiVersion": rtype.api_version(version)}
        new = apply_config(base, config, managers.get(opts.field_manager, set()))
        merged = {**{m: p for m, p in managers.items() if m != opts.field_manager}, **owned}
        new["metadata"]["managedFields"] = _managed_entries(
            merged, _times(existing), rtype.api_version(version), managers
        )
        return self._update(rtype, version, existing, new, opts, subresource, keep_managed=False)

    @staticmethod
    def _resolve_conflicts(
        rtype: ResourceType,
        existing: JsonObj,
        config: JsonObj,
        managers: dict[str, set[tuple[str, ...]]],
        opts: WriteOptions,
    ) -> None:
        """Another Apply manager owning a field this apply changes is a conflict, unless `force`."""
        wanted = applied_paths(config)
        causes = []
        for manager, paths in managers.items():
            if manager == opts.field_manager:
                continue
            clashing = {p for p in paths & wanted if _at(existing, p) != _at(config, p)}
            if clashing and opts.force:
                paths.difference_update(clashing)  # forced: the other manager loses those fields
            causes += [
                {"reason": "FieldManagerConflict", "message": f'conflict with "{manager}"', "field": "." + ".".join(p)}
                for p in sorted(clashing)
            ]
        if causes and not opts.force:
            fields = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
            message = f"Apply failed with {len(causes)} conflict{'s' if len(causes) > 1 else ''}: {fields}"
            raise errors.ApiError(
                409, "Conflict", message, {"name": existing["metadata"]["name"], "kind": rtype.plural, "causes": causes}
            )

    def _update(
        self,
        rtype: ResourceType,
        version: str,
        existing: JsonObj,
        new: JsonObj,
        opts: WriteOptions,
        subresource: str,
        *,
        keep_managed: bool = True,
    ) -> JsonObj:
        old_meta, meta = existing["metadata"], new["metadata"]
        self._check_preconditions(rtype, old_meta, meta)
        new = self._subresource_view(rtype, version, existing, new, subresource)
        meta = new["metadata"]
        for key in (*SERVER_OWNED, "namespace", "name", "resourceVersion"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if keep_managed and "managedFields" in old_meta:
            meta["managedFields"] = old_meta["managedFields"]
        new = self._admit(rtype, version, new, opts, old=existing)
        lifecycle.check_new_finalizers(rtype, existing, new)
        if _content(new) != _content(existing):
            new["metadata"]["generation"] = int(old_meta.get("generation", 0)) + 1
        if new == existing or opts.dry_run:
            return new
        if old_meta.get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return lifecycle.remove(self, rtype, new)
        stored = self.store.put(rtype.key, new, existing)
        self._learn(rtype, stored)
        return stored

    @staticmethod
    def _check_preconditions(rtype: ResourceType, old_meta: JsonObj, meta: JsonObj) -> None:
        if meta.get("name") and meta["name"] != old_meta["name"]:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({old_meta['name']})"
            )
        if meta.get("resourceVersion") and meta["resourceVersion"] != old_meta["resourceVersion"]:
            why = "the object has been modified; please apply your changes to the latest version and try again"
            raise errors.conflict(rtype.qualified, old_meta["name"], why)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            why = f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old_meta['uid']}"
            raise errors.conflict(rtype.qualified, old_meta["name"], why)

    @staticmethod
    def _subresource_view(
        rtype: ResourceType, version: str, existing: JsonObj, new: JsonObj, subresource: str
    ) -> JsonObj:
        """`/status` writes change only `.status`; main-resource writes leave `.status` alone."""
        if subresource == "status":
            result = copy.deepcopy(existing)
            result["apiVersion"] = new["apiVersion"]
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            return result
        if subresource:
            raise errors.not_found(f"{rtype.qualified}/{subresource}", existing["metadata"]["name"])
        vdef = rtype.version(version)
        if vdef is not None and vdef.status_subresource:
            if "status" in existing:
                new["status"] = copy.deepcopy(existing["status"])
            else:
                new.pop("status", None)
        return new

    # -- delete ------------------------------------------------------------------------------------
    def delete(
        self, rtype: ResourceType, namespace: str, name: str, options: JsonObj, dry_run: bool = False
    ) -> JsonObj:
        existing = self.get(rtype, namespace, name)
        preconditions = options.get("preconditions") or {}
        self._check_preconditions(rtype, existing["metadata"], {k: v for k, v in preconditions.items() if v})
        if dry_run:
            return existing
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "Background")
        return lifecycle.delete(self, rtype, existing, policy)

    def delete_collection(
        self,
        rtype: ResourceType,
        namespace: str | None,
        selectors: list[Selector],
        options: JsonObj,
        dry_run: bool = False,
    ) -> list[JsonObj]:
        targets = self.list_objects(rtype, namespace, selectors).items
        return [
            self.delete(rtype, o["metadata"].get("namespace", ""), o["metadata"]["name"], options, dry_run)
            for o in targets
            if self.store.get(rtype.key, o["metadata"].get("namespace", ""), o["metadata"]["name"]) is not None
        ]


# -- helpers --------------------------------------------------------------------------------------------
def _content(obj: JsonObj) -> JsonObj:
    """What `generation` counts: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise errors.bad_request(f"error decoding patch: {exc}") from None


def _parse_yaml(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from None


def _at(doc: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _owned_paths(obj: JsonObj) -> dict[str, set[tuple[str, ...]]]:
    return {
        entry["manager"]: paths_from_fields_v1(entry.get("fieldsV1") or {})
        for entry in obj["metadata"].get("managedFields") or ()
        if entry.get("operation") == "Apply" and entry.get("manager")
    }


def _times(obj: JsonObj) -> dict[str, str]:
    return {e.get("manager", ""): e.get("time", "") for e in obj["metadata"].get("managedFields") or ()}


def _managed_entries(
    owned: dict[str, set[tuple[str, ...]]],
    times: dict[str, str],
    api_version: str,
    before: dict[str, set[tuple[str, ...]]] | None = None,
) -> list[JsonObj]:
    """managedFields entries; a manager's `time` moves only when what it owns changed (no-op applies stay no-ops)."""
    before = before or {}
    stamp = now()
    return [
        {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": api_version,
            "time": times.get(manager) if before.get(manager) == paths and times.get(manager) else stamp,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(paths),
        }
        for manager, paths in sorted(owned.items())
        if paths
    ]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text.encode()).decode()
