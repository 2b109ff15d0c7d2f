"""How long N MemoryTenants applied at once take to become Ready: our operator against a no-op kopf operator.

    .venv/bin/python bench/bench_tenants.py [--tenants 50 200] [--isolation strict --agents 2]

One sandbox (emulated API server, embedded valkey) serves both. Readiness is observed through a watch on
memorytenants opened before the apply, counting each tenant's first Ready=True condition; the clock starts
when `kubectl apply` does. The baseline is a kopf operator whose create/resume handler only sets Ready=True,
with our operator's kopf settings: the floor that kopf and the API server set, whatever we reconcile. Each
round also times `kubectl wait --for=condition=Ready --all` on the tenants once all are Ready (what the
earlier version of this bench reported). Figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import watch

from memory_sandbox.engine import free_port
from memory_sandbox.sandbox import Sandbox

GROUP, VERSION, PLURAL = "agentmemory.io", "v1alpha1", "memorytenants"
WAIT_TIMEOUT = 300.0

# kopf settings as memory_operator/handlers/startup.py sets them, so that the gap is our reconcile.
NOOP_OPERATOR = f'''
import datetime, logging
import kopf

@kopf.on.startup()
def configure(settings, **_):
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="{GROUP}")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="{GROUP}", key="last-handled-configuration"
    )
    settings.posting.level = logging.CRITICAL
    settings.execution.max_workers = 8

@kopf.on.resume("{GROUP}", "{VERSION}", "{PLURAL}")
@kopf.on.create("{GROUP}", "{VERSION}", "{PLURAL}")
def ready(patch, **_):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch.status["conditions"] = [
        {{"type": "Ready", "status": "True", "reason": "NoOp", "message": "", "lastTransitionTime": now}}
    ]
'''


@dataclass
class Round:
    operator: str
    tenants: int
    apply: float  # kubectl apply, start to exit
    ready: float  # start of the apply to the last tenant Ready
    latency: list[float]  # each tenant's ADDED event to its first Ready=True, sorted
    kubectl_wait: float  # kubectl wait --all on the tenants once all were Ready
    cpu: float  # the operator process's CPU seconds from the start of the apply to all Ready

    HEADER = (
        "| operator | tenants | `kubectl apply` | all Ready | rate | created → Ready: median | p95 | operator CPU "
        "| `kubectl wait` after |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )

    def row(self) -> str:
        p95 = self.latency[min(len(self.latency) - 1, round(0.95 * len(self.latency)))]
        return (
            f"| {self.operator} | {self.tenants} | {self.apply:.1f} s | {self.ready:.1f} s "
            f"| {self.tenants / self.ready:.1f} tenants/s | {statistics.median(self.latency):.2f} s | {p95:.2f} s "
            f"| {self.cpu:.1f} s | {self.kubectl_wait:.1f} s |"
        )


class ReadyWatch:
    """A watch on one namespace's memorytenants, from its current resourceVersion: when each appears and is Ready."""

    def __init__(self, api: k8s.ApiClient, namespace: str, expected: int) -> None:
        self._custom = k8s.CustomObjectsApi(api)
        self._namespace = namespace
        self._expected = expected
        self.added_at: dict[str, float] = {}
        self.ready_at: dict[str, float] = {}
        self._all = threading.Event()
        self._error: BaseException | None = None
        self._watch = watch.Watch()  # type: ignore[no-untyped-call]
        listed: Any = self._custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        self._thread = threading.Thread(target=self._run, args=(listed["metadata"]["resourceVersion"],), daemon=True)
        self._thread.start()

    def _run(self, resource_version: str) -> None:
        try:
            self._follow(resource_version)
        except BaseException as exc:  # reported by wait(), which the main thread is in
            self._error = exc
            self._all.set()

    def _follow(self, resource_version: str) -> None:
        stream = self._watch.stream(  # type: ignore[no-untyped-call]
            self._custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self._namespace,
            PLURAL,
            resource_version=resource_version,
            timeout_seconds=int(WAIT_TIMEOUT) + 60,
        )
        for event in stream:
            obj = event["object"]
            if event["type"] == "ERROR":
                raise RuntimeError(f"watch failed: {obj}")
            name, now = obj["metadata"]["name"], time.monotonic()
            self.added_at.setdefault(name, now)
            conditions = (obj.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                self.ready_at.setdefault(name, now)
                if len(self.ready_at) >= self._expected:
                    self._all.set()
                    break
        self._watch.stop()  # type: ignore[no-untyped-call]

    def wait(self, timeout: float) -> None:
        if not self._all.wait(timeout) or self._error is not None:
            if self._error is not None:
                raise RuntimeError("the watch failed") from self._error
            raise RuntimeError(f"{len(self.ready_at)} of {self._expected} tenants Ready after {timeout:.0f}s")

    def latencies(self) -> list[float]:
        return sorted(ready - self.added_at[name] for name, ready in self.ready_at.items())


def tenants(namespace: str, count: int, isolation: str, agents: list[str]) -> str:
    return yaml.safe_dump_all(
        [
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MemoryTenant",
                "metadata": {"name": f"tenant-{i:04}", "namespace": namespace},
                "spec": {"isolation": isolation, "agents": agents},
            }
            for i in range(count)
        ]
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(sandbox: Sandbox, operator: tuple[str, int], namespace: str, manifest: str, count: int) -> Round:
    """One round: `operator` is (its label, its PID)."""
    label, pid = operator
    sandbox.kubectl("create", "namespace", namespace)
    with sandbox.api_client() as api:
        watcher = ReadyWatch(api, namespace, count)
        cpu, started = cpu_seconds(pid), time.monotonic()
        sandbox.kubectl("apply", "-f", "-", input=manifest, timeout=WAIT_TIMEOUT)
        applied = time.monotonic() - started
        watcher.wait(WAIT_TIMEOUT)
        ready = max(watcher.ready_at.values()) - started
        cpu = cpu_seconds(pid) - cpu
    waited = time.monotonic()
    sandbox.kubectl(
        "wait", "--for=condition=Ready", PLURAL, "--all", "-n", namespace, "--timeout=600s", timeout=WAIT_TIMEOUT
    )
    kubectl_wait = time.monotonic() - waited
    return Round(label, count, applied, ready, watcher.latencies(), kubectl_wait, cpu)


def start_noop_operator(sandbox: Sandbox, namespaces: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    script, port = workdir / "noop_operator.py", free_port()
    script.write_text(NOOP_OPERATOR)
    scope = [arg for ns in namespaces for arg in ("-n", ns)]
    liveness = f"--liveness=http://127.0.0.1:{port}/healthz"
    with (workdir / "noop_operator.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", "--standalone", *scope, liveness, str(script)],
            env={**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def live() -> bool:
        try:
            with direct.open(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            if process.poll() is not None:
                raise RuntimeError(f"the no-op operator exited; log: {workdir / 'noop_operator.log'}") from None
            return False

    Sandbox.wait_for(live, timeout=60, what="the no-op kopf operator's liveness endpoint")
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_rounds(
    box: Sandbox, workdir: Path, counts: list[int], isolation: str, agents: list[str], rounds: list[Round]
) -> None:
    baseline = [f"noop-{count}" for count in counts]
    noop = start_noop_operator(box, ["noop-warmup", *baseline], workdir)
    operator = ("no-op kopf operator", noop.pid)
    try:
        # Liveness answers before the watch-streams are open; one tenant through each operator first.
        measure(box, operator, "noop-warmup", tenants("noop-warmup", 1, isolation, agents), 1)
        for namespace, count in zip(baseline, counts, strict=True):
            manifest = tenants(namespace, count, isolation, agents)
            rounds.append(measure(box, operator, namespace, manifest, count))
    finally:
        stop(noop)
    for namespace in ["noop-warmup", *baseline]:  # no finalizers: they go at once, and our operator never sees them
        box.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=120s", timeout=WAIT_TIMEOUT)
    box.start_operator()
    assert box.operator is not None
    operator = ("agent-memory-operator", box.operator.pid)
    box.kubectl("wait", "--for=condition=Ready", "memorystore/sandbox", "--timeout=60s")
    measure(box, operator, "ours-warmup", tenants("ours-warmup", 1, isolation, agents), 1)
    for count in counts:
        manifest = tenants(f"ours-{count}", count, isolation, agents)
        rounds.append(measure(box, operator, f"ours-{count}", manifest, count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, nargs="+", default=[50, 200], help="tenants per round")
    parser.add_argument("--isolation", default="minimal", choices=["minimal", "moderate", "strict"])
    parser.add_argument("--agents", type=int, default=0, help="agents per tenant (ACL users per tenant - 1)")
    parser.add_argument("--workdir", type=Path, help="keep the sandbox's files and both operators' logs here")
    args = parser.parse_args()
    agents = [f"agent-{j}" for j in range(args.agents)]
    rounds: list[Round] = []
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())  # other work on the machine skews every figure
    with tempfile.TemporaryDirectory(prefix="bench-tenants-") as tmp:
        workdir = args.workdir or Path(tmp)
        box = Sandbox(workdir, resync_seconds=600).start(operator=False)  # the baseline runs first, alone
        try:
            run_rounds(box, workdir, args.tenants, args.isolation, agents, rounds)
        finally:
            box.stop()
    users = 1 + (args.agents if args.isolation != "minimal" else 0)
    print(f"isolation={args.isolation} agents/tenant={args.agents} ACL users/tenant={users} load={load}")
    print(Round.HEADER)
    for result in rounds:
        print(result.row())


if __name__ == "__main__":
    main()
