"""Generate the CustomResourceDefinitions in `crds/` from the pydantic models.

`python -m memory_operator.api.crdgen crds` rewrites the files; a unit test fails when they drift. The
pydantic JSON Schema is turned into a *structural* OpenAPI v3 schema as the API server requires: `$ref`s
inlined, `Optional` unwrapped, titles and `additionalProperties: false` dropped, int-or-string marked.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, cast

import yaml

from memory_operator.api.v1alpha1 import CATEGORY, GROUP, VERSION, CompliancePolicy, MemoryStore, MemoryTenant
from memory_operator.api.v1alpha1.common import CustomObject

__all__ = ["KINDS", "crd_for", "openapi_schema", "render_all", "write_all"]

KINDS: tuple[type[CustomObject], ...] = (MemoryStore, MemoryTenant, CompliancePolicy)
_DROP = {"title", "$defs", "discriminator"}


def openapi_schema(model: type[Any]) -> dict[str, Any]:
    """The structural schema of a pydantic model as it is written to the wire (by alias)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return cast(dict[str, Any], _structural(raw, raw.get("$defs", {})))


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").rsplit("/", 1)[-1]])
        # a description next to the $ref wins over the referenced model's
        return _structural({**target, **node}, defs)
    if "anyOf" in node:
        return _structural(_collapse_any_of(node), defs)
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    if "default" in node and node["default"] is None:
        del node["default"]
    if node.get("default") in ([], {}) and node.get("type") in ("array", "object"):
        del node["default"]  # a structural default of [] or {} only adds noise to every stored object
    out = {key: _structural(value, defs) for key, value in node.items() if key not in _DROP | {"properties"}}
    if "properties" in node:  # property names are data, not schema keywords: never drop one named "title"
        out["properties"] = {name: _structural(sub, defs) for name, sub in node["properties"].items()}
    sentence = default_sentence(out.get("default"))
    if sentence and sentence not in out.get("description", ""):  # `kubectl explain` shows descriptions, not defaults
        out["description"] = f"{out.get('description', '').rstrip()} {sentence}".lstrip()
    return out


def default_sentence(value: Any) -> str | None:
    """How a scalar default reads at the end of a field's description (None: no default, "" or a structured one)."""
    if isinstance(value, bool):
        return f"Default: {str(value).lower()}."
    if isinstance(value, int | float) or (isinstance(value, str) and value):
        return f"Default: {value}."
    return None


def _collapse_any_of(node: dict[str, Any]) -> dict[str, Any]:
    options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
    flat: list[dict[str, Any]] = []
    for option in options:  # Annotated[int | str] | None nests one anyOf in another
        flat.extend(option["anyOf"] if "anyOf" in option and len(option) == 1 else [option])
    types = {o.get("type") for o in flat}
    if types == {"integer", "string"}:
        merged = {k: v for o in flat for k, v in o.items() if k not in ("type", "pattern", "anyOf")}
        return {**merged, **node, "x-kubernetes-int-or-string": True}
    if len(flat) != 1:
        raise ValueError(f"cannot express anyOf {flat} structurally")
    return {**flat[0], **node}


def crd_for(model: type[CustomObject]) -> dict[str, Any]:
    spec_model = model.model_fields["spec"].annotation
    status_model = model.model_fields["status"].annotation
    assert isinstance(spec_model, type) and isinstance(status_model, type)
    singular = model.kind.lower()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{model.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced" if model.namespaced else "Cluster",
            "names": {
                "kind": model.kind,
                "listKind": f"{model.kind}List",
                "plural": model.plural,
                "singular": singular,
                "shortNames": list(model.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [_column(c) for c in model.printer_columns],
                    "schema": {"openAPIV3Schema": _root_schema(model, spec_model, status_model)},
                }
            ],
        },
    }


def _root_schema(model: type[CustomObject], spec_model: type[Any], status_model: type[Any]) -> dict[str, Any]:
    root: dict[str, Any] = {
        "type": "object",
        "description": model.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": openapi_schema(spec_model),
            "status": openapi_schema(status_model),
        },
    }
    if model.root_rules:  # the only level where CEL can see metadata.name
        root["x-kubernetes-validations"] = [dict(rule) for rule in model.root_rules]
    return root


def _column(column: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(column)
    if "priority" in out:
        out["priority"] = int(out["priority"])
    return out


def render_all() -> dict[str, str]:
    """File name -> YAML text, deterministic."""
    header = "# GENERATED by `make crds` from operator/memory_operator/api: do not edit by hand.\n"
    return {
        f"{GROUP}_{model.plural}.yaml": header + yaml.safe_dump(crd_for(model), sort_keys=False, width=120)
        for model in KINDS
    }


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "crds")):
        print(path)
