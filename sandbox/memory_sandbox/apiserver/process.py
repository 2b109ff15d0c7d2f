"""`SandboxApiProcess`: the API server's CLI as a child process, for tests and the demo."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

import yaml

__all__ = ["SandboxApiError", "SandboxApiProcess"]

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # sandbox/, where memory_sandbox lives


class SandboxApiError(RuntimeError):
    """The API server process did not come up."""


class SandboxApiProcess:
    """Start `python -m memory_sandbox.apiserver` on a free port; stop it by PID.

    The child binds port 0 and writes the kubeconfig only once it listens, so there is no port race:
    the launcher waits for the kubeconfig, reads the URL from it, then waits for `/version`.
    """

    def __init__(
        self, kubeconfig: str | Path | None = None, *, validate_schemas: bool = True, startup_timeout: float = 20.0
    ) -> None:
        self._dir = None if kubeconfig else tempfile.TemporaryDirectory(prefix="sandbox-api-")
        self.kubeconfig = Path(kubeconfig) if kubeconfig else Path(self._dir.name if self._dir else ".") / "kubeconfig"
        self.validate_schemas = validate_schemas
        self.startup_timeout = startup_timeout
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> SandboxApiProcess:
        self.kubeconfig.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "memory_sandbox.apiserver",
            "--port",
            "0",
            "--kubeconfig",
            str(self.kubeconfig),
            "--log-level",
            "WARNING",
        ]
        if not self.validate_schemas:
            command.append("--no-validate")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SOURCE_ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SandboxApiError(f"the sandbox API exited with code {self.process.returncode}")
            if self.kubeconfig.exists() and self._answers():
                return
            time.sleep(0.05)
        raise SandboxApiError(f"the sandbox API did not answer within {self.startup_timeout}s")

    def _answers(self) -> bool:
        config = yaml.safe_load(self.kubeconfig.read_text())
        self.url = config["clusters"][0]["cluster"]["server"]
        try:
            with urllib.request.urlopen(self.url + "/version", timeout=1) as response:  # noqa: S310 - loopback http
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        if self._dir is not None:
            with contextlib.suppress(OSError):
                self._dir.cleanup()

    def __enter__(self) -> SandboxApiProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
