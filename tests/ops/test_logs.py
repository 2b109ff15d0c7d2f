"""Logs (and Events) of a full lifecycle at DEBUG never contain a secret value, in any common encoding."""

from __future__ import annotations

import pytest

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
