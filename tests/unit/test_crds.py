"""The committed CRDs are exactly what the models generate, and they are structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from memory_operator.api.crdgen import render_all
from memory_operator.api.docgen import render as render_docs

CRDS = Path(__file__).resolve().parents[2] / "crds"


def test_committed_crds_match_the_models() -> None:
    rendered = render_all()
    committed = {p.name: p.read_text() for p in CRDS.glob("agentmemory.io_*.yaml")}
    assert committed == rendered, "crds/ drifted from the models: run `make crds` and commit the result"


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(walk(value, f"{path}[{i}]"))
    return found


def schemas() -> list[dict[str, Any]]:
    docs = [yaml.safe_load(text) for text in render_all().values()]
    return [v["schema"]["openAPIV3Schema"] for d in docs for v in d["spec"]["versions"]]


def test_schemas_are_structural() -> None:
    for schema in schemas():
        for path, node in walk(schema):
            assert "$ref" not in node and "anyOf" not in node and "allOf" not in node, path
            assert node.get("additionalProperties") is not False, path
            assert "uniqueItems" not in node and "title" not in node, path
            if "properties" in node and not path.endswith(".properties"):
                assert node.get("type") == "object", path


def test_every_spec_field_has_a_description_for_kubectl_explain() -> None:
    for schema in schemas():
        for path, node in walk(schema["properties"]["spec"]):
            is_field = path.count(".properties.") and not path.endswith((".properties", ".items"))
            if is_field and "type" in node:
                assert node.get("description"), path


def test_printer_columns_and_category() -> None:
    docs = {name: yaml.safe_load(text) for name, text in render_all().items()}
    tenant = docs["agentmemory.io_memorytenants.yaml"]["spec"]
    assert tenant["names"]["shortNames"] == ["mt"]
    assert tenant["names"]["categories"] == ["agentmemory"]
    columns = [c["name"] for c in tenant["versions"][0]["additionalPrinterColumns"]]
    assert {"Ready", "Store", "Isolation", "Age"} <= set(columns)
    assert tenant["versions"][0]["subresources"] == {"status": {}}
    store = docs["agentmemory.io_memorystores.yaml"]["spec"]
    assert store["scope"] == "Cluster"
    assert store["names"]["shortNames"] == ["mstore"]


def test_api_reference_matches_the_models() -> None:
    committed = (CRDS.parent / "docs" / "api.md").read_text()
    assert committed == render_docs(), "docs/api.md drifted from the models: run `make crds` and commit the result"
