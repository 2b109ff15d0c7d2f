"""How long the operator is away when its leader goes: a standby's takeover against a cold restart.

    .venv/bin/python bench/bench_takeover.py [--rounds 3] [--lease-duration 15 --renew-deadline 10 --retry-period 2]

One sandbox. Each round measures, from the moment the leader gets its signal:
- "SIGKILL, standby": two replicas with --leader-elect; the leader is SIGKILLed (a crash, a lost node);
- "SIGTERM, standby": the same, stopped cleanly (a rolling update or drain: kopf finishes, the Lease is released);
- "SIGKILL, cold restart" (the baseline: one replica, no leader election, what a `Recreate` Deployment does): the
  operator is SIGKILLed and a new process started at once (no Pod scheduling or image pull counted, so a real
  restart takes longer).
Two figures each: until the new leader holds the Lease (polled on the API every 50 ms) and until a tenant applied
right after the signal is Ready (a watch on memorytenants, opened before the apply). Figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import threading
import time
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch

from memory_sandbox.sandbox import STORE_NAMESPACE, Sandbox

GROUP, VERSION, PLURAL, LEASE = "agentmemory.io", "v1alpha1", "memorytenants", "agent-memory-operator"


def holder(leases: k8s.CoordinationV1Api) -> str | None:
    try:
        return leases.read_namespaced_lease(LEASE, STORE_NAMESPACE).spec.holder_identity
    except k8s.ApiException:
        return None


def wait_for(predicate: Any, timeout: float, poll: float = 0.05) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(poll)
    return time.monotonic()


class ReadyWatch:
    """A watch on one namespace's tenants, opened now: `ready_at(name)` is when it first saw Ready=True."""

    def __init__(self, api_client: k8s.ApiClient, namespace: str) -> None:
        self.seen: dict[str, float] = {}
        self._done = threading.Event()
        self._api = k8s.CustomObjectsApi(api_client)
        self._namespace = namespace
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stream = watch.Watch()
        for event in stream.stream(
            self._api.list_namespaced_custom_object, GROUP, VERSION, self._namespace, PLURAL, timeout_seconds=120
        ):
            obj = event["object"]
            conditions = (obj.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                self.seen.setdefault(obj["metadata"]["name"], time.monotonic())
            if self._done.is_set():
                stream.stop()

    def ready_at(self, name: str, timeout: float) -> float:
        wait_for(lambda: name in self.seen, timeout)
        self._done.set()
        return self.seen[name]


def apply_tenant(box: Sandbox, namespace: str, name: str) -> None:
    manifest = f"""apiVersion: agentmemory.io/v1alpha1
kind: MemoryTenant
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{isolation: moderate, agents: [a]}}
"""
    box.kubectl("apply", "-f", "-", input=manifest)


def standby_round(box: Sandbox, sig: signal.Signals, round_: int, timings: list[str]) -> tuple[float, float]:
    leases = k8s.CoordinationV1Api(box.api_client())
    first = box.start_replica(f"{sig.name.lower()}-{round_}-a", *timings)
    wait_for(lambda: holder(leases) == first.identity() and first.health() not in (None, "standby\n"), 120)
    second = box.start_replica(f"{sig.name.lower()}-{round_}-b", *timings)
    wait_for(lambda: second.health() == "standby\n", 60)
    namespace = f"{sig.name.lower()}-{round_}"
    box.kubectl("create", "namespace", namespace)
    ready = ReadyWatch(box.api_client(), namespace)
    signalled = time.monotonic()
    first.process.send_signal(sig)
    apply_tenant(box, namespace, "after")
    led = wait_for(lambda: holder(leases) == second.identity(), 120)
    done = ready.ready_at("after", 120)
    first.stop(signal.SIGKILL)
    second.stop(signal.SIGTERM)
    return led - signalled, done - signalled


def cold_round(box: Sandbox, round_: int) -> tuple[float, float]:
    box.start_operator()
    namespace = f"cold-{round_}"
    box.kubectl("create", "namespace", namespace)
    ready = ReadyWatch(box.api_client(), namespace)
    signalled = time.monotonic()
    box.stop_operator(kill=True)
    apply_tenant(box, namespace, "after")
    box.start_operator()  # returns once it is live
    live = time.monotonic()
    done = ready.ready_at("after", 120)
    box.stop_operator()
    return live - signalled, done - signalled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--retry-period", type=float, default=2.0)
    args = parser.parse_args()
    timings = [
        f"--lease-duration={args.lease_duration}",
        f"--renew-deadline={args.renew_deadline}",
        f"--retry-period={args.retry_period}",
    ]
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, check=False, capture_output=True, text=True).stdout.strip()
    results: dict[str, list[tuple[float, float]]] = {}
    box = Sandbox(resync_seconds=60).start(operator=False)
    try:
        for round_ in range(args.rounds):
            results.setdefault("SIGKILL, standby", []).append(standby_round(box, signal.SIGKILL, round_, timings))
            results.setdefault("SIGTERM, standby", []).append(standby_round(box, signal.SIGTERM, round_, timings))
            results.setdefault("SIGKILL, cold restart (baseline)", []).append(cold_round(box, round_))
    finally:
        box.stop()
    print(f"commit {commit}; lease {args.lease_duration:g}/{args.renew_deadline:g}/{args.retry_period:g} s; "
          f"{args.rounds} rounds")  # fmt: skip
    print("| lost by | until a new leader holds the Lease (cold: is live) | until a tenant then applied is Ready |")
    print("| --- | --- | --- |")
    for what, pairs in results.items():
        led, ready = [p[0] for p in pairs], [p[1] for p in pairs]
        print(f"| {what} | {statistics.median(led):.1f} s, {max(led):.1f} s | "
              f"{statistics.median(ready):.1f} s, {max(ready):.1f} s |")  # fmt: skip


if __name__ == "__main__":
    main()
