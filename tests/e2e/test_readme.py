"""e2e: the README's agent-library example, run as printed, on a tenant the operator has just provisioned."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memory_sandbox.demo import DEFAULT_SAMPLES
from memory_sandbox.sandbox import Sandbox
from tests.e2e.conftest import apply, secret, tenant_manifest, wait_condition

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def library_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (example,) = [b for b in blocks if "AgentMemory.from_env()" in b and "shared_context" in b]
    return example


def test_the_readmes_library_example_runs_as_printed_on_a_fresh_tenant(sandbox: Sandbox, namespace: str) -> None:
    sandbox.kubectl("apply", "-f", str(DEFAULT_SAMPLES / "10-compliancepolicies.yaml"))
    # the README's tenant: the sample helpdesk (its gdpr-support policy, its triage agent), freshly provisioned
    apply(sandbox, tenant_manifest(namespace, "helpdesk", policyRefs=[{"name": "gdpr-support"}], agents=["triage"]))
    wait_condition(sandbox, namespace, "helpdesk", "True")
    env = {  # the two Secrets of the README's envFrom
        **os.environ,
        **secret(sandbox, namespace, "helpdesk-triage-memory-credentials"),
        **secret(sandbox, namespace, "helpdesk-memory-keys"),
    }
    example = library_example()

    def run() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", example]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)

    first = run()
    assert first.returncode == 0, first.stderr  # get() was None here: the context is created, then updated
    shown, verified = first.stdout.splitlines()[:2]
    assert "[PHONE]" in shown and "[EMAIL]" in shown  # what the comment promises, from this tenant's policy
    assert "jane@example.com" not in shown and "7946" not in shown
    assert verified.startswith("ChainVerification(ok=True")

    again = run()
    assert again.returncode == 0, again.stderr  # the second agent run finds the context and updates it
