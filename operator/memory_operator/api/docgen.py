"""Generate the API reference (`docs/api.md`) from the same models as the CRDs; a unit test checks it is current.

python -m memory_operator.api.docgen docs/api.md
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from memory_operator.api.crdgen import KINDS, crd_for, default_sentence

__all__ = ["render"]


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    if node.get("type") == "array":
        return f"[]{_type(node.get('items', {}))}"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    return str(node.get("type", "object"))


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    for key, label in (("minimum", "min"), ("maximum", "max"), ("maxItems", "max items"), ("maxLength", "max length")):
        if key in node:
            parts.append(f"{label} {node[key]}")
    if "default" in node:
        sentence = default_sentence(node["default"])  # else already said at the end of the description
        if sentence is None or sentence not in str(node.get("description", "")):
            parts.append(f"default `{node['default']}`")
    return "; ".join(parts)


def _rows(node: dict[str, Any], path: str, required: set[str]) -> list[str]:
    rows = []
    for name, sub in (node.get("properties") or {}).items():
        field = f"{path}.{name}"
        flag = " (required)" if name in required else ""
        description = " ".join(str(sub.get("description", "")).split()).replace("|", "\\|")
        extra = _constraints(sub)
        rows.append(f"| `{field}`{flag} | {_type(sub)} | {description}{' (' + extra + ')' if extra else ''} |")
        target = sub.get("items", {}) if sub.get("type") == "array" else sub
        rows.extend(
            _rows(target, field + ("[]" if sub.get("type") == "array" else ""), set(target.get("required", [])))
        )
    return rows


def render() -> str:
    out = [
        "# API reference: agentmemory.io/v1alpha1",
        "",
        "Generated from the pydantic models by `make crds` (`python -m memory_operator.api.docgen docs/api.md`); "
        "do not edit by hand.",
    ]
    for model in KINDS:
        crd = crd_for(model)
        version = crd["spec"]["versions"][0]
        schema = version["schema"]["openAPIV3Schema"]
        names = crd["spec"]["names"]
        scope = "cluster-scoped" if crd["spec"]["scope"] == "Cluster" else "namespaced"
        out += [
            "",
            f"## {model.kind}",
            "",
            f"{schema['description']} ({scope}; short name `{names['shortNames'][0]}`; category "
            f"`{names['categories'][0]}`)",
        ]
        for part in ("spec", "status"):
            node = schema["properties"][part]
            out += ["", f"### {part}", "", "| field | type | description |", "| --- | --- | --- |"]
            out += _rows(node, part, set(node.get("required", [])))
        columns = ", ".join(c["name"] for c in version["additionalPrinterColumns"])
        out += ["", f"`kubectl get` columns: {columns}."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/api.md")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render())
    print(target)
