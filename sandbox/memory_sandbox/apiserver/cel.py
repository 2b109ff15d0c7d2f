"""CRD `x-kubernetes-validations`: CEL rules checked when a CRD is written and evaluated on its objects.

Rules compile with cel-python (`celpy`) and run after defaulting and pruning, as in kube-apiserver 1.34: a
failed rule is a 422 cause whose field is the schema node's path (`<nil>` at the root) joined with the rule's
`fieldPath`, worded `Invalid value: "<schema type>": <message>` (or Forbidden / Required / Duplicate, per
`reason`); a `messageExpression` that evaluates to a one-line string replaces the message. Rules that read
`oldSelf` are transition rules: they run on updates only, where the old value correlates (object properties,
map keys, items of map-lists by key). Any other rule failing on a value the update left unchanged is a
warning, not a refusal (CRD validation ratcheting). Rules are skipped while the object fails its schema.

Not emulated: the cost budget and estimated-cost limits; static type checking (a rule naming an undeclared
field fails when evaluated, not when the CRD is written); `optionalOldSelf`; escaped property names
(`__dash__`...). Optional syntax (`self.?x`) and Kubernetes library functions cel-python lacks (beyond the few
in `_K8S_FUNCTIONS`) cannot be evaluated: a CRD using them is accepted with a warning, sent to the client
and logged, and those rules are not enforced.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, base_functions

from .errors import Cause

__all__ = ["NOT_CHECKED", "Evaluation", "blocks_rules", "check_crd", "compile_rule", "has_rules", "validate"]

log = logging.getLogger(__name__)
JsonObj = dict[str, Any]
RULES = "x-kubernetes-validations"
REASONS = ("FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired")
_BLOCKING = frozenset(
    {"FieldValueNotSupported", "FieldValueRequired", "FieldValueTooLong", "FieldValueTooMany", "FieldValueTypeInvalid"}
)
NOT_CHECKED: Cause = {
    "reason": "FieldValueInvalid",
    "message": "Invalid value: null: some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation",
    "field": "<nil>",
}
_MAX_MESSAGE = 5000
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


def _k8s(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A library function whose Python errors become CEL evaluation errors, as cel-go's would."""

    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except (ValueError, TypeError, IndexError) as exc:
            return CELEvalError(str(exc), exc.__class__, exc.args)

    return call


_K8S_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lowerAscii": _k8s(lambda s: celtypes.StringType(s.translate(_ASCII_LOWER))),
    "upperAscii": _k8s(lambda s: celtypes.StringType(s.translate(_ASCII_UPPER))),
    "trim": _k8s(lambda s: celtypes.StringType(s.strip())),
    "split": _k8s(lambda s, sep: celtypes.ListType([celtypes.StringType(p) for p in (s.split(sep) if sep else s)])),
    "join": _k8s(lambda items, sep="": celtypes.StringType(str(sep).join(items))),
    "replace": _k8s(lambda s, old, new: celtypes.StringType(s.replace(old, new))),
    "isSorted": _k8s(lambda items: celtypes.BoolType(all(a <= b for a, b in itertools.pairwise(items)))),
    "sum": _k8s(lambda items: sum(items[1:], items[0]) if items else celtypes.IntType(0)),
    "max": _k8s(max),
}
"""The few Kubernetes CEL library functions emulated here (string and list extensions)."""

_MACROS = frozenset({"has", "dyn", "all", "exists", "exists_one", "map", "filter", "min"})
_SUPPORTED = frozenset(base_functions) | frozenset(_K8S_FUNCTIONS) | _MACROS
_OPTIONAL_SYNTAX = re.compile(r"\.\?|\[\?")


@dataclass(frozen=True)
class Compiled:
    """A rule ready to run; `program` is None when it failed to compile or uses what cel-python lacks."""

    program: celpy.Runner | None = None
    uses_old_self: bool = False
    unsupported: tuple[str, ...] = ()
    error: str = ""


@lru_cache(maxsize=1)
def _environment() -> celpy.Environment:
    return celpy.Environment()


@lru_cache(maxsize=1024)
def compile_rule(text: str) -> Compiled:
    env = _environment()
    try:
        ast = env.compile(text)
    except CELParseError as exc:
        if _OPTIONAL_SYNTAX.search(text):
            return Compiled(uses_old_self="oldSelf" in text, unsupported=("optional syntax",))
        return Compiled(error=f"compilation failed: ERROR: <input>:{exc.line}:{exc.column}: Syntax error")
    calls: set[str] = set()
    names: set[str] = set()
    for node in ast.iter_subtrees():
        if node.data == "member_dot_arg":
            calls.add(str(node.children[1]))
        elif node.data == "ident_arg":
            calls.add(str(node.children[0]))
        elif node.data == "ident":
            names.add(str(node.children[0]))
    unsupported = tuple(f"{name}()" for name in sorted(calls - _SUPPORTED))
    program = None if unsupported else env.program(ast, functions=_K8S_FUNCTIONS)
    return Compiled(program, "oldSelf" in names, unsupported)


# -- when a CRD is written -----------------------------------------------------------------------------
def check_crd(crd: JsonObj) -> tuple[list[Cause], list[str]]:
    """Causes to refuse the CRD's rules with (as the apiextensions validation words them), and warnings."""
    causes: list[Cause] = []
    warnings: list[str] = []
    for i, version in enumerate((crd.get("spec") or {}).get("versions") or ()):
        schema = (version.get("schema") or {}).get("openAPIV3Schema") if isinstance(version, dict) else None
        if not isinstance(schema, dict):
            continue
        for node, path, uncorrelatable in _schema_nodes(schema, f"spec.versions[{i}].schema.openAPIV3Schema", None):
            for j, rule in enumerate(node.get(RULES) or ()):
                causes += _rule_causes(rule, node, f"{path}.{RULES}[{j}]", uncorrelatable, warnings)
    for warning in warnings:
        log.warning("CRD %s: %s", (crd.get("metadata") or {}).get("name", ""), warning)
    return causes, warnings


def _rule_causes(rule: Any, node: JsonObj, where: str, uncorrelatable: str | None, warnings: list[str]) -> list[Cause]:
    if not isinstance(rule, dict):
        return [_cause(where, "FieldValueTypeInvalid", f"Invalid value: {_quote(rule)}: must be an object")]
    text, message = str(rule.get("rule") or ""), str(rule.get("message") or "")
    expression, reason, field_path = str(rule.get("messageExpression") or ""), rule.get("reason"), rule.get("fieldPath")
    causes: list[Cause] = []
    if not text.strip():
        causes.append(_cause(f"{where}.rule", "FieldValueRequired", "Required value: rule is not specified"))
    elif message and not message.strip():
        causes.append(_invalid(f"{where}.message", message, "message must be non-empty if specified"))
    elif _newlines(message.strip()):
        causes.append(_invalid(f"{where}.message", message, "message must not contain line breaks"))
    elif _newlines(text.strip()) and not message.strip():
        detail = "Required value: message must be specified if rule contains line breaks"
        causes.append(_cause(f"{where}.message", "FieldValueRequired", detail))
    if expression and not expression.strip():
        detail = "Required value: messageExpression must be non-empty if specified"
        causes.append(_cause(f"{where}.messageExpression", "FieldValueRequired", detail))
    if reason is not None and reason not in REASONS:
        supported = ", ".join(_quote(r) for r in REASONS)
        detail = f"Unsupported value: {_quote(reason)}: supported values: {supported}"
        causes.append(_cause(f"{where}.reason", "FieldValueNotSupported", detail))
    if field_path and _field_path(str(field_path), node) is None:
        causes.append(_invalid(f"{where}.fieldPath", str(field_path), "fieldPath must be a valid path"))
    if causes:
        return causes
    compiled = compile_rule(text.strip())
    if compiled.error:
        causes.append(_invalid(f"{where}.rule", _go_rule(rule), compiled.error, raw=True))
    elif compiled.uses_old_self and uncorrelatable:
        why = f"oldSelf cannot be used on the uncorrelatable portion of the schema within {uncorrelatable}"
        causes.append(_invalid(f"{where}.rule", text, why))
    elif compiled.unsupported:
        warnings.append(
            f"{where}.rule: the sandbox API cannot evaluate {', '.join(compiled.unsupported)} (cel-python lacks it); "
            "this rule is not enforced"
        )
    if expression.strip() and compile_rule(expression.strip()).error:
        detail = compile_rule(expression.strip()).error
        causes.append(_invalid(f"{where}.messageExpression", _go_rule(rule), detail, raw=True))
    return causes


def has_rules(schema: JsonObj) -> bool:
    return any(node.get(RULES) for node, _, _ in _schema_nodes(schema, "", None))


def blocks_rules(causes: list[Cause]) -> bool:
    """Schema errors that make rules meaningless (wrong types, missing fields): the server then skips them."""
    return any(c["reason"] in _BLOCKING for c in causes)


def _schema_nodes(schema: JsonObj, path: str, uncorrelatable: str | None) -> Iterator[tuple[JsonObj, str, str | None]]:
    """Every schema node with its path in the CRD and, under a list that is not a map-list, that list's path."""
    yield schema, path, uncorrelatable
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            yield from _schema_nodes(sub, f"{path}.properties[{name}]", uncorrelatable)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _schema_nodes(extra, f"{path}.additionalProperties", uncorrelatable)
    items = schema.get("items")
    if isinstance(items, dict):
        correlated = schema.get("x-kubernetes-list-type") == "map"
        yield from _schema_nodes(items, f"{path}.items", uncorrelatable or (None if correlated else path))
    for i, sub in enumerate(schema.get("allOf") or ()):
        if isinstance(sub, dict):
            yield from _schema_nodes(sub, f"{path}.allOf[{i}]", uncorrelatable)


# -- when an object is written -------------------------------------------------------------------------
@dataclass
class Evaluation:
    causes: list[Cause] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def validate(obj: JsonObj, old: JsonObj | None, schema: JsonObj) -> Evaluation:
    """Evaluate every rule of `schema` against `obj` (and `old`, the stored object, on updates)."""
    evaluation = Evaluation()
    _Walk(evaluation).node(obj, old, schema, schema, "", resource=True, ratchet=old is not None and obj == old)
    return evaluation


@dataclass
class _Walk:
    result: Evaluation

    def node(
        self, value: Any, old: Any, rules: JsonObj, typed: JsonObj, path: str, *, resource: bool, ratchet: bool
    ) -> None:
        """`rules` holds the rules (an allOf branch has its own), `typed` the types `self` is converted with."""
        if value is None:
            return
        if rules.get(RULES):
            self.evaluate(value, old, rules, typed, path, resource=resource, ratchet=ratchet)
        for sub in rules.get("allOf") or ():
            if isinstance(sub, dict):
                self.node(value, old, sub, typed, path, resource=resource, ratchet=ratchet)
        if isinstance(value, dict):
            self.walk_map(value, old if isinstance(old, dict) else {}, rules, typed, path, ratchet)
        elif isinstance(value, list) and isinstance(rules.get("items"), dict):
            items, typed_items = rules["items"], _sub(typed, "items") or rules["items"]
            before = _correlate_items(typed, old)
            for i, item in enumerate(value):
                prior, embedded = before(item), _embedded(typed_items)
                unchanged = _unchanged(prior, item, ratchet)
                self.node(item, prior, items, typed_items, f"{path}[{i}]", resource=embedded, ratchet=unchanged)

    def walk_map(self, value: JsonObj, old: JsonObj, rules: JsonObj, typed: JsonObj, path: str, ratchet: bool) -> None:
        properties = rules.get("properties") or {}
        extra = rules.get("additionalProperties")
        for name, item in value.items():
            if name in properties and isinstance(properties[name], dict):
                sub, typed_sub, child = properties[name], _prop(typed, name), _child(path, name)
            elif isinstance(extra, dict):
                sub, typed_sub, child = extra, _sub(typed, "additionalProperties"), f"{path}[{name}]"
            else:
                continue
            prior, typed_sub = old.get(name), typed_sub or sub
            unchanged = _unchanged(prior, item, ratchet)
            self.node(item, prior, sub, typed_sub, child, resource=_embedded(typed_sub), ratchet=unchanged)

    def evaluate(
        self, value: Any, old: Any, rules: JsonObj, typed: JsonObj, path: str, *, resource: bool, ratchet: bool
    ) -> None:
        this = _to_cel(_resource_view(value) if resource else value, typed)
        before = None if old is None else _to_cel(_resource_view(old) if resource else old, typed)
        kind = str(typed.get("type", ""))
        for rule in rules.get(RULES) or ():
            if not isinstance(rule, dict):
                continue
            text = str(rule.get("rule") or "").strip()
            compiled = compile_rule(text)
            if compiled.program is None or (compiled.uses_old_self and before is None):
                continue  # refused or warned about when the CRD was written; transition rules need an old value
            activation = {"self": this, "oldSelf": before} if compiled.uses_old_self else {"self": this}
            outcome = _run(compiled.program, activation, text)
            shown = str(rule.get("message") or "").strip() or text
            if isinstance(outcome, str):
                if outcome == "no such overload":
                    why = f"'{outcome}': call arguments did not match a supported operator, function or macro "
                    self.result.causes.append(_failure(path, "", kind, f"{why}signature for rule: {shown}"))
                else:
                    self.result.causes.append(_failure(path, "", kind, f"{outcome} evaluating rule: {shown}"))
                continue
            if outcome is not False:
                continue
            where = _child(path, _field_path(str(rule.get("fieldPath") or ""), typed) or "")
            cause = _failure(where, str(rule.get("reason") or ""), kind, _message(rule, text, activation))
            if ratchet and not compiled.uses_old_self:
                self.result.warnings.append(f"{cause['field']}: {cause['message']}")
            else:
                self.result.causes.append(cause)


def _unchanged(prior: Any, value: Any, parent: bool) -> bool:
    """Whether errors on `value` are ratcheted: it equals its correlated old value, else as its parent is."""
    return bool(prior == value) if prior is not None else parent


def _run(program: celpy.Runner, activation: dict[str, Any], text: str) -> bool | str | None:
    """True/False, the text of an evaluation error, or None when cel-python itself failed (logged, not enforced)."""
    try:
        result = program.evaluate(activation)
    except CELEvalError as exc:
        return _error_text(exc)
    except Exception:
        log.warning("x-kubernetes-validations rule %r failed inside cel-python; not enforced", text, exc_info=True)
        return None
    if isinstance(result, CELEvalError):
        return _error_text(result)
    return isinstance(result, celtypes.BoolType | bool) and bool(result)


def _error_text(exc: CELEvalError) -> str:
    """cel-python's error worded as cel-go words it, where the two differ."""
    text = str(exc.args[0]) if exc.args else str(exc)
    if text.startswith("no such member in mapping: "):
        return "no such key: " + text.removeprefix("no such member in mapping: ").strip("'")
    if text.startswith("found no matching overload"):
        return "no such overload"
    if text == "modulus or divide by zero":
        return "division by zero"
    return text.split(" (in activation", 1)[0]


def _message(rule: JsonObj, text: str, activation: dict[str, Any]) -> str:
    expression = str(rule.get("messageExpression") or "").strip()
    compiled = compile_rule(expression) if expression else None
    if compiled is not None and compiled.program is not None:
        try:
            evaluated = compiled.program.evaluate(activation)
        except Exception:  # as the server does: log and fall back to the static message
            log.debug("messageExpression %r failed", expression, exc_info=True)
        else:
            message = str(evaluated).strip() if isinstance(evaluated, str) else ""
            if message and len(message) <= _MAX_MESSAGE and not _newlines(message):
                return message
    return str(rule.get("message") or "").strip() or f"failed rule: {text}"


def _failure(path: str, reason: str, kind: str, detail: str) -> Cause:
    if reason == "FieldValueForbidden":
        return _cause(path, reason, f"Forbidden: {detail}")
    if reason == "FieldValueRequired":
        return _cause(path, reason, f"Required value: {detail}")
    if reason == "FieldValueDuplicate":
        return _cause(path, reason, f"Duplicate value: {_quote(kind)}")
    return _cause(path, "FieldValueInvalid", f"Invalid value: {_quote(kind)}: {detail}")


# -- values and paths ----------------------------------------------------------------------------------
_FORMATS: dict[str, Callable[[str], Any]] = {
    "date-time": celtypes.TimestampType,
    "date": celtypes.TimestampType,
    "duration": celtypes.DurationType,
}


def _to_cel(value: Any, schema: JsonObj) -> Any:
    """A JSON value as CEL sees it under `schema`: `number` is double, date-time a timestamp, and so on."""
    if value is None:
        return None
    if isinstance(value, dict):
        return celtypes.MapType(
            {
                celtypes.StringType(k): _to_cel(v, _prop(schema, k) or _sub(schema, "additionalProperties"))
                for k, v in value.items()
            }
        )
    if isinstance(value, list):
        return celtypes.ListType([_to_cel(v, _sub(schema, "items")) for v in value])
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int | float):
        if schema.get("type") == "number" or (isinstance(value, float) and not value.is_integer()):
            return celtypes.DoubleType(value)
        return celtypes.IntType(int(value))
    if isinstance(value, str):
        convert = _FORMATS.get(str(schema.get("format"))) if schema.get("type") == "string" else None
        if convert is not None:
            try:
                return convert(value)
            except Exception:  # a malformed value stays a string, as the schema check reports it elsewhere
                log.debug("cannot read %r as %s", value, schema.get("format"))
        return celtypes.StringType(value)
    return json_to_cel(value)


def _resource_view(value: Any) -> Any:
    """At a resource's root, `self.metadata` exposes only name and generateName."""
    if not isinstance(value, dict) or not isinstance(value.get("metadata"), dict):
        return value
    meta = value["metadata"]
    return {**value, "metadata": {k: meta[k] for k in ("name", "generateName") if k in meta}}


def _correlate_items(schema: JsonObj, old: Any) -> Callable[[Any], Any]:
    """The old item an item correlates with: by key in a map-list, none in any other list."""
    keys = schema.get("x-kubernetes-list-map-keys") or ()
    if schema.get("x-kubernetes-list-type") != "map" or not keys or not isinstance(old, list):
        return lambda item: None

    def key(item: Any) -> str:
        return json.dumps([item.get(k) for k in keys] if isinstance(item, dict) else item, sort_keys=True)

    index = {key(item): item for item in old}
    return lambda item: index.get(key(item))


_SEGMENT = re.compile(r"\.([^.\[\]']+)|\['((?:[^'\\]|\\.)*)'\]")


def _field_path(text: str, schema: JsonObj) -> str | None:
    """A rule's `fieldPath` (`.a.b`, `['x']`) as a field path string; None when it names no field of `schema`."""
    if not text:
        return None
    path, pos, node = "", 0, schema
    while pos < len(text):
        match = _SEGMENT.match(text, pos)
        if match is None:
            return None
        pos = match.end()
        name = match.group(1) if match.group(1) is not None else re.sub(r"\\(.)", r"\1", match.group(2))
        if node.get("properties"):
            if not isinstance(node["properties"].get(name), dict):
                return None
            path, node = _child(path, name), node["properties"][name]
        elif isinstance(node.get("additionalProperties"), dict):
            path, node = f"{path}[{name}]", node["additionalProperties"]
        else:
            return None
    return path


def _prop(schema: JsonObj, name: str) -> JsonObj:
    sub = (schema.get("properties") or {}).get(name)
    return sub if isinstance(sub, dict) else {}


def _sub(schema: JsonObj, key: str) -> JsonObj:
    sub = schema.get(key)
    return sub if isinstance(sub, dict) else {}


def _embedded(schema: JsonObj) -> bool:
    return bool(schema.get("x-kubernetes-embedded-resource"))


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path and name else path or name


def _newlines(text: str) -> bool:
    return "\n" in text or "\r" in text


def _quote(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _go_rule(rule: JsonObj) -> str:
    """The rule as Go's %#v prints apiextensions.ValidationRule (pointers shown by value)."""
    reason = rule.get("reason")
    shown = (
        f"(*apiextensions.FieldValueErrorReason)({_quote(reason)})"
        if reason
        else "(*apiextensions.FieldValueErrorReason)(nil)"
    )
    return (
        f"apiextensions.ValidationRule{{Rule:{_quote(str(rule.get('rule') or ''))}, "
        f"Message:{_quote(str(rule.get('message') or ''))}, "
        f"MessageExpression:{_quote(str(rule.get('messageExpression') or ''))}, Reason:{shown}, "
        f"FieldPath:{_quote(str(rule.get('fieldPath') or ''))}, OptionalOldSelf:(*bool)(nil)}}"
    )


def _cause(path: str, reason: str, message: str) -> Cause:
    return {"reason": reason, "message": message, "field": path or "<nil>"}


def _invalid(path: str, value: str, why: str, *, raw: bool = False) -> Cause:
    """`raw`: `value` is already rendered (a Go struct), not a string to quote."""
    shown = value if raw else _quote(value)
    return _cause(path, "FieldValueInvalid", f"Invalid value: {shown}: {why}")
