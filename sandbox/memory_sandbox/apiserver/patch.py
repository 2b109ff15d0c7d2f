"""The four PATCH flavours: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic merge and apply.

Strategic merge patch is approximated: maps merge as in a merge patch, lists whose field name is a
well-known merge key in the built-in types (containers by `name`, ownerReferences by `uid`, ...) merge
element by element, every other list is replaced, and `finalizers` merge as a set. The `$patch: delete`
/`replace` and `$deleteFromPrimitiveList` directives are honoured; `$retainKeys` and `$setElementOrder`
are dropped (order follows the patch for new elements, the existing order otherwise).

Server-side apply is approximated by `apply_config`: the applied configuration is merged like a strategic
merge patch, and fields this field manager applied before but no longer sends are removed (the real
server's "fields owned by the applier"). Ownership is tracked per manager as the set of applied leaf
paths, kept in `metadata.managedFields` in FieldsV1 form; only Apply managers own fields here.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import bad_request

__all__ = [
    "applied_paths",
    "apply_config",
    "fields_v1",
    "json_patch",
    "merge_patch",
    "paths_from_fields_v1",
    "strategic_merge",
]

JsonObj = dict[str, Any]
Path = tuple[str, ...]

# Lists that built-in types merge by key (patchMergeKey in the Go structs) — the ones people touch.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
}
SET_LISTS = frozenset({"finalizers"})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- RFC 6902 ------------------------------------------------------------------------------------------
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], part: str, *, insert: bool) -> int:
    if part == "-" and insert:
        return len(container)
    if not part.isdigit():
        raise bad_request(f"invalid array index {part!r}")
    index = int(part)
    if index > len(container) or (index == len(container) and not insert):
        raise bad_request(f"array index {index} out of bounds")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, insert=False)]
        else:
            raise bad_request(f"path /{'/'.join(tokens)} does not exist")
    return node


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    if isinstance(parent, list):
        return parent[_index(parent, tokens[-1], insert=False)]
    if not isinstance(parent, dict) or tokens[-1] not in parent:
        raise bad_request(f"path /{'/'.join(tokens)} does not exist")
    return parent[tokens[-1]]


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    if isinstance(parent, list):
        parent.insert(_index(parent, tokens[-1], insert=True), value)
    elif isinstance(parent, dict):
        parent[tokens[-1]] = value
    else:
        raise bad_request(f"cannot add at /{'/'.join(tokens)}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    _get(doc, tokens)  # raises when absent
    parent = _parent(doc, tokens)
    if isinstance(parent, list):
        del parent[_index(parent, tokens[-1], insert=False)]
    else:
        del parent[tokens[-1]]
    return doc


def json_patch(target: JsonObj, operations: Any) -> JsonObj:
    if not isinstance(operations, list):
        raise bad_request("a JSON patch must be a list of operations")
    doc: Any = copy.deepcopy(target)
    for op in operations:
        doc = _apply_operation(doc, op)
    if not isinstance(doc, dict):
        raise bad_request("a JSON patch must leave an object")
    return doc


def _apply_operation(doc: Any, op: Any) -> Any:
    if not isinstance(op, dict) or "path" not in op:
        raise bad_request(f"invalid JSON patch operation {op!r}")
    kind, tokens = op.get("op"), _pointer(op["path"])
    if kind == "add":
        return _add(doc, tokens, copy.deepcopy(op.get("value")))
    if kind == "remove":
        return _remove(doc, tokens)
    if kind == "replace":
        return _add(_remove(doc, tokens), tokens, copy.deepcopy(op.get("value")))
    if kind in ("move", "copy"):
        source = _pointer(op.get("from", ""))
        value = copy.deepcopy(_get(doc, source))
        if kind == "move":
            doc = _remove(doc, source)
        return _add(doc, tokens, value)
    if kind == "test":
        if _get(doc, tokens) != op.get("value"):
            raise ApiTestFailed(op["path"])
        return doc
    raise bad_request(f"unknown JSON patch operation {kind!r}")


class ApiTestFailed(Exception):
    """Raised by a failed `test` operation; the server answers 422 like kube-apiserver."""

    def __init__(self, path: str) -> None:
        super().__init__(f"testing value /{path} failed")
        self.path = path


# -- strategic merge -----------------------------------------------------------------------------------
def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or () if v not in value]
        elif key.startswith("$"):
            continue
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _merge_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    if field in SET_LISTS and isinstance(current, list):
        return list(current) + [v for v in patch if v not in current]
    merge_key = MERGE_KEYS.get(field)
    if merge_key is None or not isinstance(current, list):
        return [strategic_merge(None, v) for v in patch if not _is_delete(v)]
    result = [dict(v) if isinstance(v, dict) else v for v in current]
    for item in patch:
        if not isinstance(item, dict):
            continue
        position = next(
            (i for i, v in enumerate(result) if isinstance(v, dict) and v.get(merge_key) == item.get(merge_key)),
            None,
        )
        if _is_delete(item):
            if position is not None:
                del result[position]
        elif position is None:
            result.append(strategic_merge(None, item))
        else:
            result[position] = strategic_merge(result[position], item)
    return result


def _is_delete(item: Any) -> bool:
    return isinstance(item, dict) and item.get("$patch") == "delete"


# -- server-side apply ---------------------------------------------------------------------------------
IGNORED_FOR_OWNERSHIP: frozenset[str] = frozenset({"apiVersion", "kind"})


def applied_paths(config: Any, prefix: Path = ()) -> set[Path]:
    """Leaf paths of an applied configuration: what the applying manager now owns.

    Lists are atomic here (owned as a whole), which is what the real server does for lists without
    `x-kubernetes-list-type: map`.
    """
    if not isinstance(config, dict) or not config:
        return {prefix} if prefix else set()
    paths: set[Path] = set()
    for key, value in config.items():
        if not prefix and key in IGNORED_FOR_OWNERSHIP:
            continue
        if prefix == ("metadata",) and key in ("name", "namespace"):
            continue
        paths |= applied_paths(value, (*prefix, key))
    return paths


def fields_v1(paths: set[Path]) -> JsonObj:
    """Paths in the managedFields FieldsV1 shape (`{"f:spec": {"f:x": {}}}`)."""
    tree: JsonObj = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return tree


def paths_from_fields_v1(tree: JsonObj, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for key, value in tree.items():
        if not key.startswith("f:"):
            continue  # k:/v: list element keys: lists are atomic in this emulation
        path = (*prefix, key[2:])
        paths |= paths_from_fields_v1(value, path) if value else {path}
    return paths


def apply_config(current: JsonObj, config: JsonObj, previously_owned: set[Path]) -> JsonObj:
    """Merge an applied configuration into `current`, removing fields the manager dropped from it."""
    result = copy.deepcopy(current)
    for path in previously_owned - applied_paths(config):
        _delete_path(result, path)
    merged = strategic_merge(result, config)
    return merged if isinstance(merged, dict) else result


def _delete_path(doc: JsonObj, path: Path) -> None:
    parents: list[tuple[JsonObj, str]] = []
    node: Any = doc
    for part in path[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return
        parents.append((node, part))
        node = node[part]
    if isinstance(node, dict):
        node.pop(path[-1], None)
    # Maps the applier emptied go too, as the real server does once nobody owns anything inside them.
    for parent, part in reversed(parents):
        if parent[part] == {} and part not in ("metadata", "spec"):
            del parent[part]
        else:
            break
