"""Watch streams: initial state, resume from a resourceVersion, 410 Gone, selectors, timeouts, bookmarks."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

from kubernetes import client, watch

from memory_sandbox.apiserver import ApiServer

from .conftest import eventually


def stream_events(api: ApiServer, path: str, limit: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Read up to `limit` events from a raw watch URL."""
    events = []
    with urllib.request.urlopen(api.url + path, timeout=timeout) as response:
        for line in response:
            events.append(json.loads(line))
            if len(events) >= limit:
                break
    return events


def cm(core: client.CoreV1Api, name: str, **labels: str) -> Any:
    return core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})


def test_watch_without_resource_version_starts_with_current_state(api: ApiServer, core: client.CoreV1Api) -> None:
    cm(core, "a")
    events = stream_events(api, "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=2", 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "a"


def test_watch_from_list_resource_version_sees_only_later_changes(api: ApiServer, core: client.CoreV1Api) -> None:
    cm(core, "before")
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    cm(core, "after")
    core.delete_namespaced_config_map("before", "default")
    events = stream_events(
        api, f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=2", 2
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "after"), ("DELETED", "before")]


def test_watch_from_compacted_resource_version_is_410_gone() -> None:
    with ApiServer(history=3) as api:
        core_api = client.CoreV1Api(client.ApiClient(client.Configuration(host=api.url)))
        for i in range(6):
            cm(core_api, f"c{i}")
        events = stream_events(api, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2", 1)
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410


def test_watch_delivers_live_events_to_the_kubernetes_client(core: client.CoreV1Api) -> None:
    seen: list[tuple[str, str]] = []
    rv = core.list_namespaced_config_map("default").metadata.resource_version

    def consume() -> None:
        for event in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 3:
                return

    reader = threading.Thread(target=consume)
    reader.start()
    cm(core, "live")
    core.patch_namespaced_config_map("live", "default", {"data": {"a": "b"}})
    core.delete_namespaced_config_map("live", "default")
    reader.join(10)
    assert seen == [("ADDED", "live"), ("MODIFIED", "live"), ("DELETED", "live")]


def test_watch_with_label_selector_reports_objects_leaving_it(api: ApiServer, core: client.CoreV1Api) -> None:
    cm(core, "a", tier="web")
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"tier": "db"}}})
    cm(core, "b", tier="db")
    cm(core, "c", tier="web")
    query = f"watch=true&labelSelector=tier%3Dweb&resourceVersion={rv}&timeoutSeconds=2"
    path = f"/api/v1/namespaces/default/configmaps?{query}"
    events = stream_events(api, path, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("DELETED", "a"), ("ADDED", "c")]


def test_watch_ends_after_timeout_seconds(api: ApiServer) -> None:
    events = stream_events(api, "/api/v1/namespaces/default/secrets?watch=true&resourceVersion=1&timeoutSeconds=1", 10)
    assert events == []


def test_initial_events_end_with_a_bookmark(api: ApiServer, core: client.CoreV1Api) -> None:
    cm(core, "a")
    query = "watch=true&sendInitialEvents=true&allowWatchBookmarks=true&timeoutSeconds=2"
    path = f"/api/v1/namespaces/default/configmaps?{query}"
    events = stream_events(api, path, 2)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_disconnected_watchers_are_released(api: ApiServer, core: client.CoreV1Api) -> None:
    for _ in range(3):
        response = urllib.request.urlopen(
            api.url + "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=30"
        )
        eventually(lambda: api.cluster.store.watcher_count() == 1, timeout=5)
        response.close()
    eventually(lambda: api.cluster.store.watcher_count() == 0, timeout=5)
