"""Server-side printing: `meta.k8s.io/v1` Tables for `kubectl get`, with CRD additionalPrinterColumns.

The JSONPath subset is what printer columns use in practice: `.a.b`, `.a[0]`, `.a[*].b` and filters
`.a[?(@.type=="Ready")].status` (also `!=`). Built-in kinds get NAME and AGE (plus DATA/TYPE where kubectl
users expect them), not every column kube-apiserver prints.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from .resources import ResourceType, VersionDef

__all__ = ["human_age", "jsonpath", "table", "table_row"]

JsonObj = dict[str, Any]
_STEP = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-$/]+)
       |\[(?P<index>-?\d+|\*)\]
       |\[\?\(@\.(?P<fpath>[A-Za-z0-9_.\-]+)\s*(?P<op>==|!=)\s*(?P<quote>["']?)(?P<fvalue>[^"')]*)(?P=quote)\)\]""",
    re.VERBOSE,
)


def jsonpath(obj: Any, expression: str) -> list[Any]:
    """All values `expression` selects in `obj` (braces around the expression are optional)."""
    expression = expression.strip()
    if expression.startswith("{") and expression.endswith("}"):
        expression = expression[1:-1]
    nodes: list[Any] = [obj]
    pos = 0
    while pos < len(expression):
        match = _STEP.match(expression, pos)
        if match is None:
            return []
        nodes = [n for node in nodes for n in _step(node, match)]
        pos = match.end()
    return nodes


def _step(node: Any, match: re.Match[str]) -> list[Any]:
    if match["field"] is not None:
        return [node[match["field"]]] if isinstance(node, dict) and match["field"] in node else []
    if not isinstance(node, list):
        return []
    if match["index"] == "*":
        return list(node)
    if match["index"] is not None:
        index = int(match["index"])
        return [node[index]] if -len(node) <= index < len(node) else []
    wanted, equal = match["fvalue"], match["op"] == "=="
    return [item for item in node if (str(_first(jsonpath(item, "." + match["fpath"]))) == wanted) == equal]


def _first(values: list[Any]) -> Any:
    return values[0] if values else None


def human_age(timestamp: str, now: dt.datetime | None = None) -> str:
    """kubectl's HumanDuration: 45s, 5m, 3h, 2d, ..."""
    try:
        then = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    seconds = int(((now or dt.datetime.now(dt.UTC)) - then).total_seconds())
    if seconds < 0:
        return "0s"
    for limit, unit, size in ((120, "s", 1), (7200, "m", 60), (172800, "h", 3600), (63072000, "d", 86400)):
        if seconds < limit:
            return f"{seconds // size}{unit}"
    return f"{seconds // 31536000}y"


_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
_AGE_COLUMN = {
    "name": "Age",
    "type": "string",
    "format": "",
    "description": "CreationTimestamp is a timestamp.",
    "priority": 0,
}
_EXTRA_BUILTIN: dict[str, list[tuple[str, str]]] = {
    "Secret": [("Type", ".type")],
    "Namespace": [("Status", ".status.phase")],
    "Event": [("Type", ".type"), ("Reason", ".reason"), ("Object", ".involvedObject.name"), ("Message", ".message")],
    "CronJob": [("Schedule", ".spec.schedule"), ("Suspend", ".spec.suspend")],
    "CustomResourceDefinition": [],
}


def _columns(rtype: ResourceType, version: VersionDef) -> list[JsonObj]:
    if version.columns:
        return list(version.columns)
    if rtype.builtin:
        extra = [{"name": n, "type": "string", "jsonPath": p} for n, p in _EXTRA_BUILTIN.get(rtype.kind, [])]
        return [*extra, {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    return [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]


def _definition(column: JsonObj) -> JsonObj:
    if column.get("name") == "Age" and column.get("type") == "date":
        return dict(_AGE_COLUMN)
    return {
        "name": column.get("name", ""),
        "type": "string" if column.get("type") == "date" else column.get("type", "string"),
        "format": column.get("format", ""),
        "description": column.get("description", ""),
        "priority": column.get("priority", 0),
    }


def _cell(obj: JsonObj, column: JsonObj) -> Any:
    values = jsonpath(obj, column.get("jsonPath", ""))
    if not values or values[0] is None:
        return None
    value = values[0]
    if column.get("type") == "date":
        return human_age(str(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))  # as the API server prints structured cells
    return value


def table_row(rtype: ResourceType, version: VersionDef, obj: JsonObj, include: str) -> JsonObj:
    cells = [obj["metadata"]["name"], *(_cell(obj, c) for c in _columns(rtype, version))]
    row: JsonObj = {"cells": cells}
    if include == "Object":
        row["object"] = obj
    elif include != "None":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
    return row


def table(
    rtype: ResourceType, version: VersionDef, objects: list[JsonObj], include: str, list_meta: JsonObj
) -> JsonObj:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [_NAME_COLUMN, *(_definition(c) for c in _columns(rtype, version))],
        "rows": [table_row(rtype, version, obj, include) for obj in objects],
    }
