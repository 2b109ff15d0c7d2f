"""How long N MemoryTenants applied at once take to become Ready in the sandbox (operator as a real process).

    .venv/bin/python bench/bench_tenants.py [--tenants 200] [--isolation moderate --agents 2]

Prints the time from `kubectl apply` to all Ready, and the rate. Figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import yaml

from memory_sandbox.sandbox import Sandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--isolation", default="minimal", choices=["minimal", "moderate", "strict"])
    parser.add_argument("--agents", type=int, default=0, help="agents per tenant (ACL users per tenant - 1)")
    args = parser.parse_args()
    agents = [f"agent-{j}" for j in range(args.agents)]
    docs = [
        {
            "apiVersion": "agentmemory.io/v1alpha1",
            "kind": "MemoryTenant",
            "metadata": {"name": f"tenant-{i:04}", "namespace": "bench"},
            "spec": {"isolation": args.isolation, "agents": agents},
        }
        for i in range(args.tenants)
    ]
    with Sandbox(resync_seconds=600) as sandbox:
        sandbox.kubectl("create", "namespace", "bench")
        sandbox.kubectl("wait", "--for=condition=Ready", "memorystore/sandbox", "--timeout=60s")
        started = time.monotonic()
        sandbox.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), timeout=300)
        applied = time.monotonic() - started
        sandbox.kubectl(
            "wait", "--for=condition=Ready", "memorytenants", "--all", "-n", "bench", "--timeout=600s", timeout=620
        )
        ready = time.monotonic() - started
    users = args.tenants * (1 + (args.agents if args.isolation != "minimal" else 0))
    print(f"tenants={args.tenants} isolation={args.isolation} agents/tenant={args.agents} acl_users={users}")
    print(f"kubectl apply: {applied:.1f}s; all Ready after {ready:.1f}s ({args.tenants / ready:.1f} tenants/s)")


if __name__ == "__main__":
    main()
