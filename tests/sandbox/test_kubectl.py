"""kubectl end to end: apply (client- and server-side), get, watch, wait, delete, describe, explain, create."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

import pytest
import yaml

from .conftest import Kubectl, eventually, stop
from .manifests import PLURAL, widget, widget_crd


def apply(kubectl: Kubectl, *objects: dict[str, Any], extra: tuple[str, ...] = ()) -> str:
    manifest = yaml.safe_dump_all(objects)
    return kubectl.run("apply", "-f", "-", *extra, stdin=manifest).stdout


@pytest.fixture
def crd(any_kubectl: Kubectl) -> Kubectl:
    apply(any_kubectl, widget_crd())
    return any_kubectl


def test_apply_crd_then_custom_resource(crd: Kubectl) -> None:
    assert "created" in apply(crd, widget("w"))
    assert "configured" in apply(crd, widget("w", size=5))
    stored = crd.json("get", "widget", "w")
    assert stored["spec"]["size"] == 5 and stored["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]


def test_reapplying_without_a_field_removes_it(crd: Kubectl) -> None:
    apply(crd, widget("w", label="x"))
    apply(crd, widget("w"))
    assert "label" not in crd.json("get", "widget", "w")["spec"]


def test_server_side_apply(crd: Kubectl) -> None:
    assert "serverside-applied" in apply(crd, widget("w"), extra=("--server-side",))
    assert "serverside-applied" in apply(crd, widget("w", size=6), extra=("--server-side",))
    assert crd.json("get", "widget", "w")["spec"]["size"] == 6


def test_apply_invalid_object_reports_the_field(crd: Kubectl) -> None:
    result = crd.run("apply", "-f", "-", stdin=yaml.safe_dump(widget("w", size=0)), check=False)
    assert result.returncode != 0 and "spec.size" in result.stderr


def test_apply_unknown_field_is_refused_by_strict_validation(crd: Kubectl) -> None:
    result = crd.run("apply", "-f", "-", stdin=yaml.safe_dump(widget("w", typo=1)), check=False)
    assert result.returncode != 0 and 'unknown field "spec.typo"' in result.stderr


def test_get_all_namespaces_shows_printer_columns(crd: Kubectl) -> None:
    apply(crd, widget("w", size=7))
    output = crd.run("get", PLURAL, "-A").stdout.splitlines()
    assert output[0].split() == ["NAMESPACE", "NAME", "SIZE", "READY", "AGE"]
    assert output[1].split()[:3] == ["default", "w", "7"]


def test_get_by_category_and_short_name(crd: Kubectl) -> None:
    apply(crd, widget("w"))
    for name in ("sandboxtest", "wdg"):
        assert crd.run("get", name).stdout.splitlines()[1].split()[:2] == ["w", "3"]


def test_output_yaml_and_jsonpath(crd: Kubectl) -> None:
    apply(crd, widget("w", size=2))
    assert yaml.safe_load(crd.run("get", "widget", "w", "-o", "yaml").stdout)["spec"]["size"] == 2
    assert crd.run("get", "widget", "w", "-o", "jsonpath={.spec.color}").stdout == "red"


def test_get_watch_prints_changes(kubectl: Kubectl) -> None:
    apply(kubectl, widget_crd())
    apply(kubectl, widget("w"))
    watcher = kubectl.popen("get", "widgets", "-w", "--output-watch-events")
    lines: list[list[str]] = []
    reader = threading.Thread(target=lambda: lines.extend(line.split() for line in watcher.stdout or ()), daemon=True)
    reader.start()
    try:
        # kubectl prints its initial list as ADDED, then watches from that list's resourceVersion: once the
        # line is out, a change cannot fall between the list and the watch.
        eventually(lambda: ["ADDED", "w", "3"] in (row[:3] for row in lines), timeout=20)
        apply(kubectl, widget("w", size=9))
        eventually(lambda: ["MODIFIED", "w", "9"] in (row[:3] for row in lines), timeout=10)
    finally:  # not stop(): the reader thread owns stdout
        watcher.terminate()
        try:
            watcher.wait(timeout=10)
        except subprocess.TimeoutExpired:
            watcher.kill()
        reader.join(timeout=10)


def test_delete_waits_for_finalizers(crd: Kubectl) -> None:
    apply(crd, {**widget("w"), "metadata": {"name": "w", "namespace": "default", "finalizers": ["test/hold"]}})
    deleting = crd.popen("delete", "widget", "w", "--timeout=20s")
    try:
        eventually(lambda: crd.json("get", "widget", "w")["metadata"].get("deletionTimestamp"))
        assert deleting.poll() is None  # still waiting for the object to go
        crd.run("patch", "widget", "w", "--type=merge", "-p", json.dumps({"metadata": {"finalizers": None}}))
        assert deleting.wait(15) == 0
    finally:
        stop(deleting)
    assert crd.run("get", "widget", "w", check=False).returncode != 0


def test_wait_for_condition(crd: Kubectl) -> None:
    apply(crd, widget("w"))
    waiting = crd.popen("wait", "--for=condition=Ready", "widget/w", "--timeout=20s")
    try:
        status = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        crd.run("patch", "widget", "w", "--subresource=status", "--type=merge", "-p", json.dumps(status))
        assert waiting.wait(15) == 0
    finally:
        stop(waiting)


def test_describe_shows_events(crd: Kubectl) -> None:
    apply(crd, widget("w"))
    uid = crd.json("get", "widget", "w")["metadata"]["uid"]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "w.1", "namespace": "default"},
        "involvedObject": {
            "kind": "Widget",
            "name": "w",
            "namespace": "default",
            "uid": uid,
            "apiVersion": "sandbox.test/v1",
        },
        "reason": "Provisioned",
        "message": "all good",
        "type": "Normal",
        "source": {"component": "tester"},
    }
    apply(crd, event)
    assert "all good" in crd.run("describe", "widget", "w").stdout


def test_explain_custom_resource(crd: Kubectl) -> None:
    output = crd.run("explain", "widgets.spec").stdout
    assert "size" in output and "color" in output


def test_imperative_create_of_builtin_kinds(any_kubectl: Kubectl) -> None:
    any_kubectl.run("create", "namespace", "team-a")
    any_kubectl.run("-n", "team-a", "create", "secret", "generic", "creds", "--from-literal=password=s3cret")
    any_kubectl.run("-n", "team-a", "create", "configmap", "settings", "--from-literal=a=b")
    any_kubectl.run("-n", "team-a", "create", "serviceaccount", "robot")
    secret = any_kubectl.json("-n", "team-a", "get", "secret", "creds")
    assert secret["data"] == {"password": "czNjcmV0"} and secret["type"] == "Opaque"


def test_apply_builtin_kind_twice(any_kubectl: Kubectl) -> None:
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "sweep", "namespace": "default"},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "main", "image": "busybox", "env": [{"name": "A", "value": "1"}]}],
                        }
                    }
                }
            },
        },
    }
    apply(any_kubectl, cronjob)
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "B", "value": "2"}
    )
    assert "configured" in apply(any_kubectl, cronjob)
    stored = any_kubectl.json("get", "cronjob", "sweep")
    container = stored["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "busybox" and [e["name"] for e in container["env"]] == ["A", "B"]


def test_delete_namespace_with_kubectl(any_kubectl: Kubectl) -> None:
    any_kubectl.run("create", "namespace", "gone")
    any_kubectl.run("-n", "gone", "create", "configmap", "c")
    any_kubectl.run("delete", "namespace", "gone")
    assert any_kubectl.run("get", "namespace", "gone", check=False).returncode != 0
