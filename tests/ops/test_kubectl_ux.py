"""What a platform team sees with kubectl: useful columns, informative explain, Events in describe."""

from __future__ import annotations

import pytest

from tests.ops.conftest import Lifecycle

pytestmark = pytest.mark.e2e


def test_get_agentmemory_lists_every_kind_with_ready_and_reason(lifecycle: Lifecycle) -> None:
    out = lifecycle.get_all
    assert "memorystore.agentmemory.io/sandbox" in out
    assert "memorytenant.agentmemory.io/alpha" in out
    header = next(line for line in out.splitlines() if line.startswith("NAMESPACE") and "ISOLATION" in line)
    assert header.split()[:5] == ["NAMESPACE", "NAME", "READY", "REASON", "STORE"]
    assert "StoreNotFound" in out  # the failing tenant says why, right in the list


def test_describe_shows_the_events_of_a_tenant(lifecycle: Lifecycle) -> None:
    events = lifecycle.describe.split("Events:", 1)[1]
    assert "DriftRepaired" in events
    assert "Provisioned" in events


def test_explain_describes_the_spec_fields(lifecycle: Lifecycle) -> None:
    out = lifecycle.explain
    for field in ("isolation", "agents", "quota", "deletionPolicy", "storeRef"):
        assert field in out
    assert "strict" in out and "Retain" in out  # descriptions, not just names
    flat = " ".join(out.split())  # kubectl wraps descriptions
    for default in ("Default: moderate.", "Default: Retain."):  # explain prints descriptions, not schema defaults
        assert default in flat
