"""Label selectors (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`) and field selectors.

Field selectors accept any dotted path into the object (`metadata.name`, `involvedObject.uid`, `type`,
...), which is more than a real server allows per kind: it never rejects a field label.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import bad_request

__all__ = ["Selector", "parse_field_selector", "parse_label_selector"]

JsonObj = dict[str, Any]
Selector = Callable[[JsonObj], bool]

_SET_TERM = re.compile(r"^\s*(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*(?P<key>[^\s!=()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s=!()]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=()]+)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b` is two terms)."""
    terms, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return [t for t in terms if t.strip()]


def _label_term(term: str) -> Selector:
    if match := _SET_TERM.match(term):
        key, values = match["key"], {v.strip() for v in match["values"].split(",") if v.strip()}
        if match["op"] == "in":
            return lambda obj: _labels(obj).get(key) in values
        return lambda obj: _labels(obj).get(key) not in values
    if match := _EQ_TERM.match(term):
        key, value = match["key"], match["value"]
        if match["op"] == "!=":
            return lambda obj: _labels(obj).get(key) != value
        return lambda obj: _labels(obj).get(key) == value
    if match := _EXISTS_TERM.match(term):
        key, negated = match["key"], bool(match["neg"])
        return lambda obj: (key in _labels(obj)) != negated
    raise bad_request(f"unable to parse requirement: {term!r}")


def _labels(obj: JsonObj) -> dict[str, str]:
    labels = obj.get("metadata", {}).get("labels")
    return labels if isinstance(labels, dict) else {}


def parse_label_selector(text: str) -> Selector | None:
    if not text.strip():
        return None
    checks = [_label_term(term) for term in _split_terms(text)]
    return lambda obj: all(check(obj) for check in checks)


def _field_value(obj: JsonObj, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def _field_term(term: str) -> Selector:
    negated = "!=" in term
    key, _, value = term.replace("!=", "=", 1).replace("==", "=", 1).partition("=")
    if not _ or not key.strip():
        raise bad_request(f"invalid field selector: {term!r}")
    key, value = key.strip(), value.strip()
    value = value.replace("\\,", ",").replace("\\=", "=").replace("\\\\", "\\")
    if negated:
        return lambda obj: _field_value(obj, key) != value
    return lambda obj: _field_value(obj, key) == value


def parse_field_selector(text: str) -> Selector | None:
    if not text.strip():
        return None
    checks = [_field_term(term) for term in _split_escaped_terms(text)]
    return lambda obj: all(check(obj) for check in checks)


def _split_escaped_terms(text: str) -> list[str]:
    """Comma-separated terms, keeping escapes inside each term for `_field_term` to undo."""
    terms, current, escaped = [], "", False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]
