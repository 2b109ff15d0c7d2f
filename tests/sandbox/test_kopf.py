"""A throwaway kopf operator, run as `kopf run` against the sandbox: handlers, finalizer, timer, events."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from .conftest import eventually, stop
from .manifests import GROUP, PLURAL, VERSION, widget

FINALIZER = "sandbox.test/finalizer"
OPERATOR = textwrap.dedent(
    f'''
    import os, pathlib
    import kopf

    MARKS = pathlib.Path(os.environ["MARKS"])

    @kopf.on.startup()
    def configure(settings: kopf.OperatorSettings, **_):
        settings.persistence.finalizer = "{FINALIZER}"

    @kopf.on.create("{GROUP}", "{VERSION}", "{PLURAL}")
    def created(body, spec, patch, **_):
        kopf.info(body, reason="Created", message="create handler ran")
        patch.status["seenSize"] = spec["size"]
        (MARKS / "created").touch()

    @kopf.on.update("{GROUP}", "{VERSION}", "{PLURAL}", field="spec.size")
    def updated(new, patch, **_):
        patch.status["seenSize"] = new
        (MARKS / f"updated-{{new}}").touch()

    @kopf.on.delete("{GROUP}", "{VERSION}", "{PLURAL}")
    def deleted(**_):
        (MARKS / "deleted").touch()

    @kopf.timer("{GROUP}", "{VERSION}", "{PLURAL}", interval=0.5)
    def tick(patch, status, **_):
        patch.status["ticks"] = (status.get("ticks") or 0) + 1
    '''
)


@pytest.fixture
def operator(kubeconfig: Path, tmp_path: Path, widgets: dict[str, Any]) -> Iterator[tuple[Path, Path]]:
    """`kopf run` as a child process; yields (marks directory, log file)."""
    script, marks, log = tmp_path / "operator.py", tmp_path / "marks", tmp_path / "kopf.log"
    script.write_text(OPERATOR)
    marks.mkdir()
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "MARKS": str(marks)}
    command = [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces", "--verbose", str(script)]
    with log.open("w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
    try:
        eventually(lambda: "Starting the watch-stream for widgets" in log.read_text(), timeout=20)
        yield marks, log
    finally:
        stop(process)


def read(custom: client.CustomObjectsApi) -> dict[str, Any]:
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w"))


def test_kopf_operator_lifecycle(
    operator: tuple[Path, Path], custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    marks, log = operator
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, widget("w"))
    eventually((marks / "created").exists, timeout=20)
    eventually(lambda: read(custom)["metadata"].get("finalizers") == [FINALIZER])
    eventually(lambda: read(custom).get("status", {}).get("seenSize") == 3)
    eventually(lambda: read(custom)["status"].get("ticks", 0) >= 2, timeout=20)

    custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w", {"spec": {"size": 5}})
    eventually((marks / "updated-5").exists, timeout=20)
    eventually(lambda: read(custom)["status"].get("seenSize") == 5)

    events = core.list_namespaced_event("default", field_selector="involvedObject.name=w").items
    assert "Created" in {e.reason for e in events}

    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w")
    eventually((marks / "deleted").exists, timeout=20)
    eventually(lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"], timeout=20)

    text = log.read_text()
    assert "Traceback" not in text and "APIClientError" not in text and "[ERROR" not in text
