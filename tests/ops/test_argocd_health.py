"""The Argo CD health check (deploy/gitops/argocd/health.lua), run with a real Lua interpreter (lupa).

Argo CD runs the script with the object as the global `obj` and reads the returned table's status and message;
so does this test, for every case in health_test.yaml (Argo CD's own test format), and for samples derived
from what the operator really writes (`with_conditions` on a status model).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from memory_operator.api.crdgen import KINDS
from memory_operator.api.v1alpha1 import MemoryTenantStatus
from memory_operator.reconcilers.common import condition, with_conditions
from tests.ops.conftest import ROOT

lupa = pytest.importorskip("lupa")

ARGOCD = ROOT / "deploy" / "gitops" / "argocd"
SCRIPT = (ARGOCD / "health.lua").read_text()
CASES = yaml.safe_load((ARGOCD / "health_test.yaml").read_text())["tests"]


def to_lua(runtime: Any, value: Any) -> Any:
    """Python data as Lua tables the way Argo CD converts an object's JSON (lists are 1-based arrays)."""
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> dict[str, str]:
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = to_lua(runtime, obj)
    result = runtime.execute(SCRIPT)
    return {"status": result["status"], "message": result["message"]}


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_of_sample_objects(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((ARGOCD / case["inputPath"]).read_text())
    assert health(obj) == case["healthStatus"]


def test_every_argocd_status_this_script_can_return_is_covered() -> None:
    assert {c["healthStatus"]["status"] for c in CASES} == {"Healthy", "Progressing", "Degraded"}


def test_the_argocd_cm_snippet_carries_the_script_for_every_kind() -> None:
    data = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())["data"]
    assert set(data) == {f"resource.customizations.health.agentmemory.io_{k.kind}" for k in KINDS}
    assert all(script == SCRIPT for script in data.values())


def test_a_status_written_by_the_operator_is_healthy_then_progressing_on_a_new_generation() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    ready = condition("Ready", "True", "Provisioned", "ok", 3, now)
    status = with_conditions(MemoryTenantStatus(), 3, ready).to_wire()
    tenant = {"kind": "MemoryTenant", "metadata": {"name": "t", "namespace": "n", "generation": 3}, "status": status}
    assert health(tenant)["status"] == "Healthy"
    tenant["metadata"]["generation"] = 4
    assert health(tenant)["status"] == "Progressing"


@pytest.mark.parametrize("reason", ["InvalidSpec", "StoreUnavailable", "QuotaExceeded", "NameConflict", "Whatever"])
def test_failures_needing_attention_are_degraded(reason: str) -> None:
    obj = {
        "metadata": {"generation": 1},
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "False", "reason": reason}]},
    }
    assert health(obj) == {"status": "Degraded", "message": reason}


@pytest.mark.parametrize("reason", ["StoreNotFound", "PolicyNotFound", "SecretNotFound"])
def test_waiting_for_an_object_not_yet_applied_is_progressing(reason: str) -> None:
    obj = {
        "metadata": {"generation": 1},
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "False", "reason": reason}]},
    }
    assert health(obj)["status"] == "Progressing"
