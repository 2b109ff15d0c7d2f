"""e2e: the sandbox's kubelet stand-in runs a CronJob as declared, env resolved from Secrets and ConfigMaps."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from memory_sandbox.cronjobs import EnvResolutionError
from memory_sandbox.sandbox import Sandbox
from tests.e2e.conftest import apply, get_json

pytestmark = pytest.mark.e2e

PRINT_ENV = (
    "import os; print(os.environ['FROM_SECRET'], os.environ['CM_GREETING'], os.environ['LITERAL'], os.environ['NS'])"
)


def cronjob(
    namespace: str, name: str, command: list[str], env_from: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    container = {
        "name": "job",
        "image": "agent-memory-operator:test",
        "command": command,
        "envFrom": env_from or [],
        "env": [
            {"name": "LITERAL", "value": "plain"},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "job-secret", "key": "token"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "schedule": "17 3 * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}},
        },
    }


@pytest.fixture
def sources(sandbox: Sandbox, namespace: str) -> str:
    apply(
        sandbox,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "job-secret", "namespace": namespace},
         "stringData": {"token": "s3cret"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "job-config", "namespace": namespace},
         "data": {"GREETING": "hello"}},
    )  # fmt: skip
    return namespace


def test_cronjob_runs_with_env_from_secrets_and_configmaps(sandbox: Sandbox, sources: str) -> None:
    env_from = [{"configMapRef": {"name": "job-config"}, "prefix": "CM_"}]
    apply(sandbox, cronjob(sources, "report", [sys.executable, "-c", PRINT_ENV], env_from))

    run = sandbox.run_cronjob(sources, "report")

    assert run.succeeded, run.stderr
    assert run.stdout.split() == ["s3cret", "hello", "plain", sources]
    job = get_json(sandbox, "job", run.job_name, "-n", sources)
    assert job["metadata"]["ownerReferences"][0]["name"] == "report"
    assert [c["type"] for c in job["status"]["conditions"]] == ["Complete"]


def test_failing_command_is_recorded_as_a_failed_job(sandbox: Sandbox, sources: str) -> None:
    apply(sandbox, cronjob(sources, "broken", [sys.executable, "-c", "raise SystemExit(3)"]))

    run = sandbox.run_cronjob(sources, "broken")

    assert run.exit_code == 3
    job = get_json(sandbox, "job", run.job_name, "-n", sources)
    assert job["status"]["failed"] == 1
    assert [c["type"] for c in job["status"]["conditions"]] == ["Failed"]


def test_missing_secret_stops_the_run_like_a_pod_that_cannot_start(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, cronjob(namespace, "orphan", [sys.executable, "-c", "print('never')"]))

    with pytest.raises(EnvResolutionError, match="job-secret"):
        sandbox.run_cronjob(namespace, "orphan")
