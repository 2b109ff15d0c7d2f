"""CRD structural-schema handling: defaulting, pruning of unknown fields and OpenAPI v3 validation.

One walk over the object does all three, as the real server's decoder does, and reports the pruned
paths so that `fieldValidation=Strict` can refuse them. Covered keywords: type, nullable, properties,
additionalProperties, items, required, enum, pattern, minimum/maximum (+exclusive), minLength/maxLength,
minItems/maxItems, minProperties/maxProperties, uniqueItems, default, allOf/anyOf/oneOf/not,
x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string, x-kubernetes-embedded-resource.
Not covered: `format` checks. CEL `x-kubernetes-validations` are evaluated by `cel`, after this walk.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .errors import Cause

__all__ = ["SchemaResult", "apply_schema"]

JsonObj = dict[str, Any]
ROOT_KEPT = frozenset({"apiVersion", "kind", "metadata"})
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@dataclass
class SchemaResult:
    obj: JsonObj
    causes: list[Cause] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def apply_schema(obj: JsonObj, schema: JsonObj) -> SchemaResult:
    """Default, prune and validate a copy of `obj`; `causes` empty means valid."""
    walker = _Walker()
    result = walker.walk(copy.deepcopy(obj), schema, "", root=True)
    return SchemaResult(result, walker.causes, walker.unknown)


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _render(value: Any) -> str:
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return json.dumps(value)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    for name, types in _TYPES.items():
        if name != "number" and isinstance(value, types):
            return name
    return "number"


class _Walker:
    def __init__(self) -> None:
        self.causes: list[Cause] = []
        self.unknown: list[str] = []

    def fail(self, path: str, reason: str, message: str) -> None:
        self.causes.append({"reason": reason, "message": message, "field": path})

    def invalid(self, path: str, value: Any, why: str) -> None:
        self.fail(path, "FieldValueInvalid", f"Invalid value: {_render(value)}: {path} in body {why}")

    def walk(self, value: Any, schema: JsonObj, path: str, *, root: bool = False) -> Any:
        if value is None:
            if not schema.get("nullable") and "type" in schema:
                self.type_error(path, value, schema["type"])
            return value
        if not self.check_type(value, schema, path):
            return value
        self.check_combinators(value, schema, path)
        if "enum" in schema and value not in schema["enum"]:
            supported = ", ".join(_render(v) for v in schema["enum"])
            self.fail(
                path, "FieldValueNotSupported", f"Unsupported value: {_render(value)}: supported values: {supported}"
            )
        if isinstance(value, str):
            self.check_string(value, schema, path)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self.check_number(value, schema, path)
        elif isinstance(value, list):
            return self.walk_array(value, schema, path)
        elif isinstance(value, dict):
            return self.walk_object(value, schema, path, root=root)
        return value

    def type_error(self, path: str, value: Any, expected: str) -> None:
        self.fail(
            path,
            "FieldValueTypeInvalid",
            f"Invalid value: {_render(value)}: {path} in body must be of type {expected}: {_render(_type_name(value))}",
        )

    def check_type(self, value: Any, schema: JsonObj, path: str) -> bool:
        if schema.get("x-kubernetes-int-or-string"):
            ok = isinstance(value, (int, str)) and not isinstance(value, bool)
            if not ok:
                self.type_error(path, value, "integer or string")
            return ok
        expected = schema.get("type")
        if expected is None:
            return True
        ok = isinstance(value, _TYPES.get(expected, (object,))) and (
            expected == "boolean" or not isinstance(value, bool)
        )
        if expected == "integer" and isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            self.type_error(path, value, expected)
        return ok

    def check_combinators(self, value: Any, schema: JsonObj, path: str) -> None:
        for sub in schema.get("allOf", ()):
            self.walk(value, sub, path)
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                passing = sum(1 for sub in schema[keyword] if not _probe(value, sub, path))
                if passing == 0 or (keyword == "oneOf" and passing > 1):
                    how_many = "one and only one" if keyword == "oneOf" else "at least one"
                    self.invalid(path, value, f"must validate {how_many} schema ({keyword})")
        if "not" in schema and not _probe(value, schema["not"], path):
            self.invalid(path, value, "must not validate the schema (not)")

    def check_string(self, value: str, schema: JsonObj, path: str) -> None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.invalid(path, value, f"should be at least {schema['minLength']} chars long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.fail(path, "FieldValueTooLong", f"Too long: may not be more than {schema['maxLength']} bytes")
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            self.invalid(path, value, f"should match '{schema['pattern']}'")

    def check_number(self, value: float, schema: JsonObj, path: str) -> None:
        if "minimum" in schema:
            exclusive = schema.get("exclusiveMinimum") is True
            if value < schema["minimum"] or (exclusive and value == schema["minimum"]):
                word = "greater than" if exclusive else "greater than or equal to"
                self.invalid(path, value, f"should be {word} {schema['minimum']}")
        if "maximum" in schema:
            exclusive = schema.get("exclusiveMaximum") is True
            if value > schema["maximum"] or (exclusive and value == schema["maximum"]):
                word = "less than" if exclusive else "less than or equal to"
                self.invalid(path, value, f"should be {word} {schema['maximum']}")
        if "multipleOf" in schema and value % schema["multipleOf"]:
            self.invalid(path, value, f"should be a multiple of {schema['multipleOf']}")

    def walk_array(self, value: list[Any], schema: JsonObj, path: str) -> list[Any]:
        if "minItems" in schema and len(value) < schema["minItems"]:
            self.invalid(path, len(value), f"should have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.fail(
                path, "FieldValueTooMany", f"Too many: {len(value)}: must have at most {schema['maxItems']} items"
            )
        unique = schema.get("uniqueItems") or schema.get("x-kubernetes-list-type") == "set"
        if unique and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            self.fail(path, "FieldValueDuplicate", f"Duplicate value: {path} in body shouldn't contain duplicates")
        items = schema.get("items")
        if not isinstance(items, dict):
            return value
        return [self.walk(item, items, f"{path}[{i}]") for i, item in enumerate(value)]

    def walk_object(self, value: JsonObj, schema: JsonObj, path: str, *, root: bool) -> JsonObj:
        properties: JsonObj = schema.get("properties") or {}
        for name, sub in properties.items():
            if name not in value and isinstance(sub, dict) and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        for name in schema.get("required", ()):
            if name not in value:
                self.fail(_join(path, name), "FieldValueRequired", "Required value")
        self.check_size(value, schema, path)
        additional = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-embedded-resource")
        result: JsonObj = {}
        for name, item in value.items():
            child = _join(path, name)
            if root and name in ROOT_KEPT:
                result[name] = item
            elif name in properties:
                result[name] = self.walk(item, properties[name], child)
            elif isinstance(additional, dict):
                result[name] = self.walk(item, additional, child)
            elif additional is True or preserve:
                result[name] = item
            else:
                self.unknown.append(child)
        return result

    def check_size(self, value: JsonObj, schema: JsonObj, path: str) -> None:
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            self.invalid(path, len(value), f"should have at least {schema['minProperties']} properties")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            self.invalid(path, len(value), f"should have at most {schema['maxProperties']} properties")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _probe(value: Any, schema: JsonObj, path: str) -> list[Cause]:
    """Causes `value` would raise against `schema`, without touching the outer walk."""
    walker = _Walker()
    walker.walk(copy.deepcopy(value), schema, path)
    return walker.causes
