"""The sandbox's kubelet stand-in: run a CronJob's container command locally, with the env its spec declares.

Nothing runs Pods here, so this proves a generated CronJob is runnable as written: the command and args of
its first container are executed on this machine (the image is not pulled; its entry points must be on
PATH, as they are in the project's virtualenv), with `env` and `envFrom` resolved from the referenced
Secrets and ConfigMaps exactly as the kubelet would. The run is recorded as a Job owned by the CronJob,
with a Succeeded or Failed status, so `kubectl get jobs` shows it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

__all__ = ["KUBELET_USER_AGENT", "CronJobRun", "EnvResolutionError", "resolve_env", "run_cronjob"]

#: what the runner's API requests say they are (the kubelet's, not the operator's: RBAC tests tell them apart)
KUBELET_USER_AGENT = "agentmemory-sandbox-kubelet"


class EnvResolutionError(RuntimeError):
    """A non-optional Secret/ConfigMap (or key) the container needs is missing: a Pod would not start."""


@dataclass(frozen=True)
class CronJobRun:
    job_name: str
    command: list[str]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


def _source(api: k8s.CoreV1Api, kind: str, namespace: str, name: str) -> dict[str, str] | None:
    try:
        if kind == "Secret":
            secret = api.read_namespaced_secret(name, namespace)
            return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        config_map = api.read_namespaced_config_map(name, namespace)
        return {k: str(v) for k, v in (config_map.data or {}).items()}
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def resolve_env(api: k8s.CoreV1Api, namespace: str, container: dict[str, Any]) -> dict[str, str]:
    """The container's environment: envFrom first, then env (which wins), as the kubelet orders them."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            ref = source.get(key)
            if ref is None:
                continue
            data = _source(api, kind, namespace, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise EnvResolutionError(f"envFrom: {kind} {namespace}/{ref['name']} not found")
            env.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        if "value" in var or "valueFrom" not in var:
            env[var["name"]] = var.get("value", "")
            continue
        value = _value_from(api, namespace, var["name"], var["valueFrom"])
        if value is not None:
            env[var["name"]] = value
    return env


def _value_from(api: k8s.CoreV1Api, namespace: str, name: str, value_from: dict[str, Any]) -> str | None:
    field_ref = value_from.get("fieldRef")
    if field_ref is not None:
        if field_ref.get("fieldPath") == "metadata.namespace":
            return namespace
        raise EnvResolutionError(f"env {name}: fieldRef {field_ref.get('fieldPath')} is not emulated")
    for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
        ref = value_from.get(key)
        if ref is None:
            continue
        data = _source(api, kind, namespace, ref["name"])
        if data is not None and ref["key"] in data:
            return data[ref["key"]]
        if ref.get("optional"):
            return None
        raise EnvResolutionError(f"env {name}: {kind} {namespace}/{ref['name']} key {ref['key']!r} not found")
    raise EnvResolutionError(f"env {name}: valueFrom {sorted(value_from)} is not emulated")


def run_cronjob(
    api_client: k8s.ApiClient, namespace: str, name: str, *, timeout: float = 300.0, extra_path: Path | None = None
) -> CronJobRun:
    """Run CronJob `namespace/name` once now, like `kubectl create job --from=cronjob/name`, and record a Job."""
    api_client.user_agent = KUBELET_USER_AGENT
    batch, core = k8s.BatchV1Api(api_client), k8s.CoreV1Api(api_client)
    cronjob: dict[str, Any] = api_client.sanitize_for_serialization(  # type: ignore[no-untyped-call]
        batch.read_namespaced_cron_job(name, namespace)
    )
    template = cronjob["spec"]["jobTemplate"]
    container = template["spec"]["template"]["spec"]["containers"][0]
    command = [*(container.get("command") or []), *(container.get("args") or [])]
    if not command:
        raise EnvResolutionError(f"CronJob {namespace}/{name}: container has no command (the image default is unknown)")
    env = resolve_env(core, namespace, container)
    path = os.pathsep.join(p for p in (str(extra_path or Path(sys.executable).parent), os.environ.get("PATH", "")) if p)
    started = datetime.now(UTC)
    job_name = _record_job(batch, namespace, cronjob, template, started)
    try:
        done = subprocess.run(
            command,
            env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **env},  # noqa: S108 - a fallback HOME
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        exit_code, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        exit_code, stdout, stderr = 124, str(exc.stdout or ""), f"timed out after {timeout}s"
    except FileNotFoundError:
        exit_code, stdout, stderr = 127, "", f"{command[0]}: command not found"
    _finish_job(batch, namespace, job_name, exit_code, started)
    return CronJobRun(job_name, command, exit_code, stdout, stderr)


def _record_job(
    batch: k8s.BatchV1Api, namespace: str, cronjob: dict[str, Any], template: dict[str, Any], started: datetime
) -> str:
    """Create the run's Job; its name is the CronJob's plus at most 11 characters, as the CronJob controller's
    `-<minutes since epoch>` is (so a 52-character CronJob name fits 63). Seconds rather than minutes, and the
    next second when taken, since the sandbox may run one CronJob more than once a minute."""
    owner = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": cronjob["metadata"]["name"],
        "uid": cronjob["metadata"]["uid"],
        "controller": True,
    }
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "namespace": namespace,
            "labels": dict(template.get("metadata", {}).get("labels") or {}),
            "ownerReferences": [owner],
        },
        "spec": template["spec"],
    }
    second = int(started.timestamp())
    while True:
        job_name = body["metadata"]["name"] = f"{cronjob['metadata']['name']}-{second}"
        try:
            batch.create_namespaced_job(namespace, cast(Any, body))
            break
        except ApiException as exc:
            if exc.status != 409:
                raise
            second += 1
    batch.patch_namespaced_job_status(job_name, namespace, {"status": {"startTime": started.isoformat(), "active": 1}})
    return job_name


def _finish_job(batch: k8s.BatchV1Api, namespace: str, job_name: str, exit_code: int, started: datetime) -> None:
    now = datetime.now(UTC).isoformat()
    kind = "Complete" if exit_code == 0 else "Failed"
    status = {
        "startTime": started.isoformat(),
        "completionTime": now if exit_code == 0 else None,
        "active": 0,
        "succeeded": 1 if exit_code == 0 else 0,
        "failed": 0 if exit_code == 0 else 1,
        "conditions": [{"type": kind, "status": "True", "lastTransitionTime": now, "reason": f"ExitCode{exit_code}"}],
    }
    batch.patch_namespaced_job_status(job_name, namespace, {"status": status})
