"""Label and field selectors on lists (watches share the same code path; see test_watch)."""

from __future__ import annotations

import pytest
from kubernetes import client

from memory_sandbox.apiserver.selectors import parse_field_selector, parse_label_selector

LABELS = {"a": {"tier": "web", "env": "prod"}, "b": {"tier": "db", "env": "dev"}, "c": {"tier": "cache"}}


@pytest.fixture
def labelled(core: client.CoreV1Api) -> client.CoreV1Api:
    for name, labels in LABELS.items():
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})
    return core


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a"]),
        ("tier==db", ["b"]),
        ("tier!=web", ["b", "c"]),
        ("tier in (web, db)", ["a", "b"]),
        ("tier notin (web,db)", ["c"]),
        ("env", ["a", "b"]),
        ("!env", ["c"]),
        ("env,tier!=db", ["a"]),
    ],
)
def test_label_selector(labelled: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    items = labelled.list_namespaced_config_map("default", label_selector=selector).items
    assert [c.metadata.name for c in items] == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [("metadata.name=b", ["b"]), ("metadata.name!=b", ["a", "c"]), ("metadata.namespace==default", ["a", "b", "c"])],
)
def test_field_selector(labelled: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    items = labelled.list_config_map_for_all_namespaces(field_selector=selector).items
    assert [c.metadata.name for c in items] == expected


def test_event_field_selector_on_involved_object(core: client.CoreV1Api) -> None:
    for name, uid in (("e1", "u1"), ("e2", "u2")):
        core.create_namespaced_event(
            "default", {"metadata": {"name": name}, "involvedObject": {"kind": "Widget", "name": "w", "uid": uid}}
        )
    selector = "involvedObject.kind=Widget,involvedObject.name=w,involvedObject.uid=u2"
    assert [e.metadata.name for e in core.list_namespaced_event("default", field_selector=selector).items] == ["e2"]


def test_escaped_comma_in_field_value() -> None:
    select = parse_field_selector(r"metadata.name=a\,b")
    assert select is not None and select({"metadata": {"name": "a,b"}})


def test_empty_selectors_select_everything() -> None:
    assert parse_label_selector("") is None and parse_field_selector(" ") is None
