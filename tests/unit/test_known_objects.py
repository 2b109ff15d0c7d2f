"""What the Kubernetes client knows of the children it wrote or read (clients.kube.Known), and the status patch a
pass sends: a converged pass reads watched children from memory, re-applies nothing and patches no status."""

from __future__ import annotations

import json
from typing import Any

import kopf
from kubernetes import client as k8s

from memory_operator.api.conditions import Condition
from memory_operator.api.v1alpha1 import MemoryStoreStatus
from memory_operator.clients.kube import Known, KubeClient
from memory_operator.handlers.sync import _write


def obj(name: str = "s", version: str = "1", kind: str = "Secret", **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"namespace": "team", "name": name, "resourceVersion": version,
                                       "managedFields": [{"manager": "x"}]}, **fields}  # fmt: skip


class Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


def counting_read(body: dict[str, Any]) -> tuple[list[str], Any]:
    calls: list[str] = []

    def read(name: str, namespace: str, **_: Any) -> Response:
        calls.append(name)
        return Response(body)

    return calls, read


def test_a_watched_kind_is_read_once_then_from_memory_and_an_unwatched_one_every_time() -> None:
    watched, unwatched = KubeClient(k8s.ApiClient(), frozenset({"Secret"})), KubeClient(k8s.ApiClient())
    for kube in (watched, unwatched):
        calls, read = counting_read(obj(data={"k": "djE="}))
        first, second = kube._read(read, "Secret", "team", "s"), kube._read(read, "Secret", "team", "s")
        assert first is not None and second is not None and first["data"] == second["data"] == {"k": "djE="}
        assert len(calls) == (1 if kube is watched else 2)
    assert "managedFields" not in (watched.get_secret("team", "s") or {})["metadata"]


def test_a_watch_event_replaces_what_is_known_and_a_deletion_forgets_it() -> None:
    known = Known(frozenset({"Secret"}))
    known.keep("Secret", obj(version="1", data={"k": "a"}), known.mark("Secret", "team", "s"))
    known.observe("Secret", "MODIFIED", obj(version="2", data={"k": "edited"}))
    assert (known.get("Secret", "team", "s") or {})["data"] == {"k": "edited"}
    known.observe("Secret", "DELETED", obj(version="3"))
    assert known.get("Secret", "team", "s") is None  # read again, never remembered as absent


def test_objects_the_client_never_asked_for_are_not_remembered() -> None:
    known = Known(frozenset({"Secret"}))
    known.observe("Secret", None, obj(name="someone-elses"))
    assert known.get("Secret", "team", "someone-elses") is None


def test_a_response_overtaken_by_a_watch_event_is_not_kept() -> None:
    known = Known(frozenset({"Secret"}))
    mark = known.mark("Secret", "team", "s")  # the request leaves...
    known.observe("Secret", "MODIFIED", obj(version="5", data={"k": "newer"}))  # ...an event arrives first
    known.keep("Secret", obj(version="4", data={"k": "older"}), mark)
    assert (known.get("Secret", "team", "s") or {})["data"] == {"k": "newer"}


def test_an_object_without_the_watchs_labels_is_never_kept() -> None:
    known = Known(frozenset({"Secret"}), labels={"app.kubernetes.io/managed-by": "us"})
    known.keep("Secret", obj(name="admin"), known.mark("Secret", "team", "admin"))  # e.g. a store's admin Secret
    assert known.get("Secret", "team", "admin") is None
    ours = obj(name="ours")
    ours["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "us"}
    known.keep("Secret", ours, known.mark("Secret", "team", "ours"))
    assert known.get("Secret", "team", "ours") is not None
    known.observe("Secret", "MODIFIED", obj(name="ours", version="2"))  # the label taken off
    assert known.get("Secret", "team", "ours") is None


def test_what_is_known_is_read_again_after_max_age() -> None:
    now = [0.0]
    known = Known(frozenset({"Secret"}), clock=lambda: now[0])
    known.keep("Secret", obj(), known.mark("Secret", "team", "s"))
    now[0] = Known.MAX_AGE + 1
    assert known.get("Secret", "team", "s") is None


def test_an_apply_is_needed_unless_the_same_body_was_applied_and_the_object_still_holds_it() -> None:
    known = Known(frozenset({"CronJob"}))
    desired = {"kind": "CronJob", "metadata": {"namespace": "team", "name": "c"},
               "spec": {"schedule": "0 3 * * *", "suspend": False}}  # fmt: skip
    written = obj("c", version="7", kind="CronJob", spec={**desired["spec"], "defaulted": 1})
    known.keep("CronJob", written, known.mark("CronJob", "team", "c"), applied=desired)

    assert known.applied("CronJob", written, desired)  # what the apply produced
    status_only = obj("c", version="8", kind="CronJob", spec=written["spec"], status={"lastScheduleTime": "t"})
    assert known.applied("CronJob", status_only, desired)  # newer, but every applied field as applied
    edited = obj("c", version="9", kind="CronJob", spec={**written["spec"], "suspend": True})
    assert not known.applied("CronJob", edited, desired)
    assert not known.applied("CronJob", written, obj("c", kind="CronJob", spec={"schedule": "0 4 * * *"}))
    assert not known.applied("CronJob", None, desired)
    assert not Known(frozenset({"CronJob"})).applied("CronJob", written, desired)  # after a restart: apply once


def status(message: str, at: str) -> MemoryStoreStatus:
    ready = Condition.model_validate({"type": "Ready", "status": "True", "reason": "Connected", "message": message,
                                      "observedGeneration": 1, "lastTransitionTime": at})  # fmt: skip
    return MemoryStoreStatus.model_validate({"observedGeneration": 1, "conditions": [ready.to_wire()]})


def test_an_unchanged_status_sends_an_empty_patch_and_a_changed_one_only_what_moved() -> None:
    body = kopf.Body({"kind": "MemoryStore", "metadata": {"name": "s"}})
    old = status("answers", "2026-01-01T00:00:00Z")

    patch = kopf.Patch()
    _write(body, patch, old, status("answers", "2026-01-01T00:00:00Z"), [])
    assert not patch

    _write(body, patch, old, status("answers again", "2026-01-01T00:00:00Z"), [])
    assert set(patch["status"]) == {"conditions"}


def test_the_token_refresh_hook_runs_at_most_once_a_second_not_before_every_request() -> None:
    configuration, calls = k8s.Configuration(), list[Any]()
    configuration.refresh_api_key_hook = calls.append
    KubeClient(k8s.ApiClient(configuration))
    for _ in range(100):
        configuration.get_api_key_with_prefix("BearerToken")
    assert calls == [configuration]


def test_a_client_without_a_token_refresh_hook_gets_none() -> None:
    configuration = k8s.Configuration()
    KubeClient(k8s.ApiClient(configuration))
    assert configuration.refresh_api_key_hook is None


def test_what_is_known_is_a_copy_without_managed_fields_and_the_caller_keeps_its_own() -> None:
    known = Known(frozenset({"Secret"}))
    response = obj(data={"k": "djE="})
    known.keep("Secret", response, known.mark("Secret", "team", "s"))
    assert response["metadata"]["managedFields"] == [{"manager": "x"}]  # the response itself is left as it was
    first = known.get("Secret", "team", "s") or {}
    first["data"]["k"] = "changed by a caller"
    assert (known.get("Secret", "team", "s") or {}) == {**obj(data={"k": "djE="}), "metadata": {
        "namespace": "team", "name": "s", "resourceVersion": "1"}}  # fmt: skip


def test_the_same_body_applied_again_is_recognised_whatever_the_order_of_its_keys() -> None:
    known = Known(frozenset({"CronJob"}))
    desired = {"kind": "CronJob", "metadata": {"namespace": "team", "name": "c"}, "spec": {"a": 1, "b": [1, 2]}}
    written = obj("c", version="7", kind="CronJob", spec=desired["spec"])
    known.keep("CronJob", written, known.mark("CronJob", "team", "c"), applied=desired)
    reordered = {"spec": {"b": [1, 2], "a": 1}, "metadata": {"name": "c", "namespace": "team"}, "kind": "CronJob"}
    assert known.applied("CronJob", written, reordered)
    assert not known.applied("CronJob", written, {**reordered, "spec": {"b": [2, 1], "a": 1}})
