"""Logs (and Events) of a full lifecycle at DEBUG never contain a secret value, in any common encoding; JSON
logs name the object on every line about it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memory_sandbox.sandbox import Sandbox
from tests.e2e.conftest import apply, tenant_manifest, wait_condition
from tests.ops.conftest import Lifecycle, with_encodings

pytestmark = pytest.mark.e2e


def test_the_lifecycle_collected_the_secrets_to_look_for(lifecycle: Lifecycle) -> None:
    # 5 credentials Secrets (tenant + agents), 2 keyrings (whole JSON + each key), the store admin password.
    assert len(lifecycle.secret_values) >= 5 + 2 * 2 + 1
    assert all(len(v) >= 16 for v in lifecycle.secret_values)


def test_the_operator_logged_at_debug(lifecycle: Lifecycle) -> None:
    log = lifecycle.sandbox.operator_log_text()
    assert "[DEBUG" in log or '"levelname": "DEBUG"' in log or " DEBUG " in log
    assert "DriftRepaired" in log and "AgentRevoked" in log


def test_the_operator_log_contains_no_secret_value(lifecycle: Lifecycle) -> None:
    log = lifecycle.sandbox.operator_log_text()
    leaked = [v[:6] + "..." for v in with_encodings(lifecycle.secret_values) if v in log]
    assert not leaked, f"secret values (shown truncated) in {lifecycle.sandbox.operator_log}: {leaked}"


def test_events_contain_no_secret_value(lifecycle: Lifecycle) -> None:
    text = repr(lifecycle.events)
    assert lifecycle.events
    assert not [v for v in with_encodings(lifecycle.secret_values) if v in text]


def test_json_logs_are_one_object_per_line_naming_the_tenant(tmp_path: Path) -> None:
    with Sandbox(tmp_path, operator_args=("--log-format=json",)) as box:
        box.kubectl("create", "namespace", "json-logs")
        apply(box, tenant_manifest("json-logs", "talkative"))
        wait_condition(box, "json-logs", "talkative", "True")
        lines = [json.loads(line) for line in box.operator_log_text().splitlines() if line.strip()]
    about_tenant = [r for r in lines if (r.get("object") or {}).get("kind") == "MemoryTenant"]
    assert about_tenant, "no log line about the tenant"
    assert all(r["object"]["namespace"] == "json-logs" and r["object"]["name"] == "talkative" for r in about_tenant)
    assert all({"message", "timestamp", "severity"} <= set(r) for r in lines)
