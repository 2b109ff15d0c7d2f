"""What the server does to an object before storing it: defaults of built-in kinds, names, CRD schemas and rules.

This stands in for kube-apiserver's registry strategies (ObjectMeta rules in `objectmeta`), the CRD
structural-schema decoder (`schema`) and CRD validation rules (`cel`); there are no admission webhooks or
admission plugins.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from . import cel, errors
from .objectmeta import metadata_causes
from .resources import CRD_KEY, NAMESPACE_KEY, ResourceType
from .schema import apply_schema

__all__ = ["Admitted", "admit", "crd_status"]

JsonObj = dict[str, Any]
FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


@dataclass
class Admitted:
    obj: JsonObj
    warnings: list[str] = field(default_factory=list)


def admit(
    rtype: ResourceType,
    version: str,
    obj: JsonObj,
    *,
    old: JsonObj | None = None,
    schemas: bool,
    field_validation: str,
) -> Admitted:
    """Normalise and validate `obj` (owned by the caller; `old` is the stored object on updates); 422 or 400."""
    normalise = _NORMALISERS.get(rtype.key)
    if normalise is not None:
        normalise(rtype, obj)
    name = obj.get("metadata", {}).get("name", "")
    causes = metadata_causes(rtype, obj)
    warnings: list[str] = []
    if rtype.key == CRD_KEY:
        rule_causes, warnings = cel.check_crd(obj)
        causes += rule_causes
    if causes:
        raise errors.invalid(rtype.kind, rtype.group, name, causes)
    vdef = rtype.version(version)
    if not schemas or vdef is None or vdef.schema is None:
        return Admitted(obj, warnings)
    result = apply_schema(obj, vdef.schema)
    causes = result.causes
    if cel.has_rules(vdef.schema):
        if cel.blocks_rules(causes):
            causes.append(cel.NOT_CHECKED)
        else:
            evaluated = cel.validate(result.obj, old, vdef.schema)
            causes, warnings = causes + evaluated.causes, warnings + evaluated.warnings
    if causes:
        raise errors.invalid(rtype.kind, rtype.group, name, causes)
    return Admitted(result.obj, warnings + _unknown_fields(result.unknown, field_validation))


def _unknown_fields(unknown: list[str], field_validation: str) -> list[str]:
    messages = [f'unknown field "{path}"' for path in unknown]
    if not messages or field_validation == "Ignore":
        return []
    if field_validation == "Strict":
        raise errors.bad_request("strict decoding error: " + ", ".join(messages))
    return messages


def _secret(rtype: ResourceType, obj: JsonObj) -> None:
    """`stringData` is write-only: merged into base64 `data`, as the Secret strategy does."""
    data = dict(obj.get("data") or {})
    for key, value in (obj.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            cause = {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: illegal base64 data",
                "field": f"data[{key}]",
            }
            raise errors.invalid("Secret", "", obj.get("metadata", {}).get("name", ""), [cause]) from None
    if data:
        obj["data"] = data
    if not obj.get("type"):
        obj["type"] = "Opaque"


def _namespace(rtype: ResourceType, obj: JsonObj) -> None:
    meta = obj.setdefault("metadata", {})
    labels = meta.get("labels") or {}
    meta["labels"] = {**labels, "kubernetes.io/metadata.name": meta.get("name", "")}
    obj.setdefault("spec", {"finalizers": ["kubernetes"]})
    obj.setdefault("status", {"phase": "Active"})


def _crd(rtype: ResourceType, obj: JsonObj) -> None:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    expected = f"{names.get('plural', '')}.{spec.get('group', '')}"
    name = obj.get("metadata", {}).get("name", "")
    causes = [
        {"reason": "FieldValueRequired", "message": "Required value", "field": f"spec.{path}"}
        for path, value in (
            ("group", spec.get("group")),
            ("names.plural", names.get("plural")),
            ("names.kind", names.get("kind")),
        )
        if not value
    ]
    if not spec.get("versions"):
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.versions"})
    if name != expected:
        message = f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'
        causes.append({"reason": "FieldValueInvalid", "message": message, "field": "metadata.name"})
    if causes:
        raise errors.invalid(rtype.kind, rtype.group, name, causes)


def crd_status(crd: JsonObj, now: str) -> JsonObj:
    """The status the apiextensions controllers would settle on: names accepted, established."""
    spec = crd.get("spec") or {}
    conditions = [
        {"type": kind, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message}
        for kind, reason, message in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        )
    ]
    storage = [v.get("name") for v in spec.get("versions", []) if v.get("storage")]
    return {"conditions": conditions, "acceptedNames": spec.get("names", {}), "storedVersions": storage}


_NORMALISERS = {
    ("", "secrets"): _secret,
    NAMESPACE_KEY: _namespace,
    CRD_KEY: _crd,
}
