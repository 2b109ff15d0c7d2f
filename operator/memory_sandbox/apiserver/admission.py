"""What the server does to an object before storing it: defaults of built-in kinds, CRD schemas, names.

This stands in for kube-apiserver's registry strategies and the CRD structural-schema decoder; there are
no admission webhooks or admission plugins.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .resources import CRD_KEY, NAMESPACE_KEY, ResourceType
from .schema import apply_schema

__all__ = ["Admitted", "admit", "crd_status", "validate_name"]

JsonObj = dict[str, Any]
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


@dataclass
class Admitted:
    obj: JsonObj
    warnings: list[str] = field(default_factory=list)


def validate_name(rtype: ResourceType, name: str) -> None:
    """Names are DNS subdomains (namespaces: DNS labels), as for nearly every kind."""
    label = rtype.key == NAMESPACE_KEY
    pattern, limit = (_DNS_LABEL, 63) if label else (_DNS_SUBDOMAIN, 253)
    if len(name) <= limit and pattern.match(name):
        return
    kind, chars = ("RFC 1123 label", "'-'") if label else ("RFC 1123 subdomain", "'-' or '.'")
    message = (
        f'Invalid value: "{name}": a lowercase {kind} must consist of lower case alphanumeric characters, '
        f"{chars}, and must start and end with an alphanumeric character"
    )
    raise errors.invalid(
        rtype.kind, rtype.group, name, [{"reason": "FieldValueInvalid", "message": message, "field": "metadata.name"}]
    )


def admit(rtype: ResourceType, version: str, obj: JsonObj, *, schemas: bool, field_validation: str) -> Admitted:
    """Normalise and validate `obj` (owned by the caller); 422 Invalid or 400 on violations."""
    normalise = _NORMALISERS.get(rtype.key)
    if normalise is not None:
        normalise(rtype, obj)
    vdef = rtype.version(version)
    if not schemas or vdef is None or vdef.schema is None:
        return Admitted(obj)
    result = apply_schema(obj, vdef.schema)
    name = obj.get("metadata", {}).get("name", "")
    if result.causes:
        raise errors.invalid(rtype.kind, rtype.group, name, result.causes)
    return Admitted(result.obj, _unknown_fields(result.unknown, field_validation))


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
