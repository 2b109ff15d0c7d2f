"""e2e: `--no-watch-secrets` (deploy/components/secrets-by-name): the operator never lists or watches Secrets.

Kubernetes RBAC cannot tie `list`/`watch` to a label selector, so a platform that forbids the operator to
enumerate Secrets runs it with this flag and without those verbs. What it gives up is the prompt repair of an
edited tenant Secret (the periodic pass repairs it); CronJobs are still watched.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory_operator.handlers.requests import REQUEST_ANNOTATION
from memory_sandbox.apiserver.requestlog import ENV_VAR as REQUEST_LOG_ENV
from memory_sandbox.sandbox import Sandbox
from tests.e2e.conftest import apply, get_json, secret, tenant_manifest, wait_condition, wait_until

pytestmark = pytest.mark.e2e

SLOW_TIMER = 600.0  # no repair here may come from the periodic pass


@pytest.fixture(scope="module")
def by_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    workdir = tmp_path_factory.mktemp("secrets-by-name")
    log = workdir / "requests.jsonl"
    box = Sandbox(workdir, resync_seconds=SLOW_TIMER, operator_args=("--no-watch-secrets",))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(REQUEST_LOG_ENV, str(log))  # inherited by the sandbox API process only at start
        box.start()
    try:
        box.kubectl("create", "namespace", "byname")
        yield box, log
    finally:
        box.stop()


def _requested(box: Sandbox, name: str) -> str:
    annotations = get_json(box, "memorytenant", name, "-n", "byname")["metadata"].get("annotations") or {}
    return str(annotations.get(REQUEST_ANNOTATION, ""))


def test_without_the_secret_watch_the_operator_never_lists_or_watches_secrets(by_name: tuple[Sandbox, Path]) -> None:
    box, log = by_name
    apply(box, tenant_manifest("byname", "plain"))
    wait_condition(box, "byname", "plain", "True")  # it provisioned its Secrets, by name

    requests = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    secret_paths = [r for r in requests if r["path"].rstrip("/").split("/")[-1] == "secrets"]
    assert not [r for r in secret_paths if r["method"] == "GET"], "a list or watch of Secrets was made"
    assert [r for r in requests if "/secrets/" in r["path"]], "the Secrets were not read by name either"
    cronjob_watches = [r for r in requests if r["path"].endswith("/cronjobs") and r["query"].get("watch")]
    assert cronjob_watches, "CronJobs are still watched"


def test_a_deleted_cronjob_is_still_recreated_at_once(by_name: tuple[Sandbox, Path]) -> None:
    box, _ = by_name
    apply(box, tenant_manifest("byname", "pruned"))
    wait_condition(box, "byname", "pruned", "True")
    old_uid = get_json(box, "cronjob", "pruned-memory-retention", "-n", "byname")["metadata"]["uid"]
    box.kubectl("delete", "cronjob", "pruned-memory-retention", "-n", "byname")

    def recreated() -> bool:
        found = box.kubectl("get", "cronjob", "pruned-memory-retention", "-n", "byname", "-o",
                            "jsonpath={.metadata.uid}", check=False)  # fmt: skip
        return found.returncode == 0 and found.stdout not in ("", old_uid)

    wait_until(recreated, timeout=15.0, what="the CronJob recreated")
    assert _requested(box, "pruned").startswith("CronJob/pruned-memory-retention@")


def test_an_edited_secret_alone_is_not_repaired_before_the_periodic_pass(by_name: tuple[Sandbox, Path]) -> None:
    box, _ = by_name
    apply(box, tenant_manifest("byname", "alone"))
    wait_condition(box, "byname", "alone", "True")
    evil = base64.b64encode(b"someone-else:").decode()
    box.kubectl("patch", "secret", "alone-memory-credentials", "-n", "byname", "--type=merge",
                "-p", f'{{"data": {{"MEMORY_KEY_PREFIX": "{evil}"}}}}')  # fmt: skip
    time.sleep(5.0)  # with the watch, the repair takes under a second (test_reconcile_requests)
    assert secret(box, "byname", "alone-memory-credentials")["MEMORY_KEY_PREFIX"] == "someone-else:"
    assert _requested(box, "alone") == ""
