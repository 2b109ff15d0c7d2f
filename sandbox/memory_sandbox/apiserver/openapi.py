"""`/openapi/v3`: one OpenAPI 3.0 document per group-version, enough for kubectl.

kubectl reads it for three things: whether PATCH accepts `fieldValidation` (it does, so kubectl leaves
unknown-field checks to the server instead of validating client-side), which patch types a kind accepts
(strategic merge is not listed, so `kubectl apply` uses its compiled-in types for built-ins and a JSON
merge patch for custom resources, as with a real server for CRDs), and `kubectl explain` (CRD schemas are
served in full; built-in kinds only as an open object). `/openapi/v2` needs protobuf and is not served:
kubectl copes with a 404 there.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import Registry, ResourceType, VersionDef

__all__ = ["openapi_v3_document", "openapi_v3_root"]

JsonObj = dict[str, Any]
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(rtype: ResourceType, version: str) -> str:
    if rtype.builtin:
        package = "core" if not rtype.group else rtype.group.split(".")[0]
        return f"io.k8s.api.{package}.{version}.{rtype.kind}"
    return ".".join(reversed(rtype.group.split("."))) + f".{version}.{rtype.kind}"


def _gvk(rtype: ResourceType, version: str) -> JsonObj:
    return {"group": rtype.group, "version": version, "kind": rtype.kind}


def _param(name: str) -> JsonObj:
    return {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}


def _operation(rtype: ResourceType, version: str, action: str, ref: str, *, body: tuple[str, ...] = ()) -> JsonObj:
    operation: JsonObj = {
        "operationId": f"{action}{rtype.kind}",
        "parameters": [_param(p) for p in _WRITE_PARAMS] + ([_param("force")] if action == "patch" else []),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rtype, version),
    }
    if body:
        operation["requestBody"] = {"content": {t: {"schema": {"$ref": ref}} for t in body}, "required": True}
    return operation


def _paths(rtype: ResourceType, vdef: VersionDef) -> JsonObj:
    version = vdef.name
    base = "/" + _gv_path(rtype.group, version)
    collection = f"{base}/namespaces/{{namespace}}/{rtype.plural}" if rtype.namespaced else f"{base}/{rtype.plural}"
    ref = f"#/components/schemas/{_schema_name(rtype, version)}"
    item_ops = {
        "get": _operation(rtype, version, "get", ref),
        "put": _operation(rtype, version, "put", ref, body=("application/json",)),
        "patch": _operation(rtype, version, "patch", ref, body=PATCH_TYPES),
        "delete": _operation(rtype, version, "delete", ref),
    }
    paths = {
        collection: {
            "get": _operation(rtype, version, "list", ref),
            "post": _operation(rtype, version, "post", ref, body=("application/json",)),
        },
        f"{collection}/{{name}}": item_ops,
    }
    if vdef.status_subresource:
        paths[f"{collection}/{{name}}/status"] = {k: item_ops[k] for k in ("get", "put", "patch")}
    return paths


def _kind_schema(rtype: ResourceType, vdef: VersionDef) -> JsonObj:
    schema: JsonObj = (
        dict(vdef.schema)
        if vdef.schema
        else {
            "type": "object",
            "description": f"{rtype.kind} (the sandbox API does not publish the schemas of built-in kinds).",
            "x-kubernetes-preserve-unknown-fields": True,
        }
    )
    properties = dict(schema.get("properties") or {})
    properties["metadata"] = {
        "allOf": [{"$ref": f"#/components/schemas/{OBJECT_META}"}],
        "description": "Standard object's metadata.",
    }
    properties.setdefault(
        "apiVersion",
        {
            "type": "string",
            "description": "APIVersion defines the versioned schema of this representation of an object.",
        },
    )
    properties.setdefault(
        "kind",
        {
            "type": "string",
            "description": "Kind is a string value representing the REST resource this object represents.",
        },
    )
    schema["properties"] = properties
    schema["x-kubernetes-group-version-kind"] = [_gvk(rtype, vdef.name)]
    return schema


_OBJECT_META_SCHEMA: JsonObj = {
    "type": "object",
    "description": "ObjectMeta is metadata that all persisted resources must have.",
    "properties": {
        name: {"type": kind, "description": name}
        for name, kind in (
            ("name", "string"),
            ("namespace", "string"),
            ("generateName", "string"),
            ("uid", "string"),
            ("resourceVersion", "string"),
            ("generation", "integer"),
            ("creationTimestamp", "string"),
            ("deletionTimestamp", "string"),
        )
    }
    | {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "labels"},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}, "description": "annotations"},
        "finalizers": {"type": "array", "items": {"type": "string"}, "description": "finalizers"},
        "ownerReferences": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "description": "ownerReferences",
        },
        "managedFields": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "description": "managedFields",
        },
    },
}


def openapi_v3_document(registry: Registry, group: str, version: str) -> JsonObj | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    paths: JsonObj = {}
    schemas: JsonObj = {OBJECT_META: _OBJECT_META_SCHEMA}
    for rtype in types:
        vdef = rtype.version(version)
        assert vdef is not None
        paths |= _paths(rtype, vdef)
        schemas[_schema_name(rtype, version)] = _kind_schema(rtype, vdef)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (sandbox)", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def document_hash(document: JsonObj) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:64].upper()


def openapi_v3_root(registry: Registry) -> JsonObj:
    paths = {}
    for group, versions in sorted(registry.group_versions().items()):
        for version in versions:
            document = openapi_v3_document(registry, group, version)
            if document is not None:
                path = _gv_path(group, version)
                paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={document_hash(document)}"}
    return {"paths": paths}
