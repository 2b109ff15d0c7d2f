"""Kubernetes API requests per periodic pass of converged tenants, counted in the sandbox's request log.

    .venv/bin/python bench/bench_steady_kube.py [--tenants 1 100] [--resync 5] [--window 20]

For each N: a fresh sandbox (request log on, the operator as a real process with a `--resync` s timer), N
tenants applied at once, all Ready, one more interval to converge; then over `--window` seconds the operator's
requests are counted (watches, kubectl and probes left out) and divided by the tenant passes that ended in the
window ("Timer 'tenant_resync' succeeded" lines). The store connection's read of its admin Secret and the
MemoryStore's own status patches are shown apart. To measure another revision, put its `operator/` first on
PYTHONPATH (the sandbox starts the operator with this environment). Figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from memory_sandbox.apiserver.requestlog import ENV_VAR as REQUEST_LOG_ENV
from memory_sandbox.sandbox import Sandbox

PASS_DONE = "Timer 'tenant_resync' succeeded"
NOT_OPERATOR = ("kubectl/", "Python-urllib/", "kubelet/")
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def tenant(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "agentmemory.io/v1alpha1", "kind": "MemoryTenant",
            "metadata": {"name": name, "namespace": namespace}, "spec": {}}  # fmt: skip


def kind_of(r: dict[str, Any]) -> str:
    """`GET secrets`, `PATCH memorytenants/status`: method and resource, without names."""
    parts = [p for p in r["path"].split("/") if p]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    return f"{r['method']} {resource}"


def requests(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def all_ready(box: Sandbox, namespace: str, n: int) -> bool:
    items = json.loads(box.kubectl("get", "memorytenants", "-n", namespace, "-o", "json").stdout)["items"]
    ready = [t for t in items for c in (t.get("status") or {}).get("conditions", [])
             if c["type"] == "Ready" and c["status"] == "True"]  # fmt: skip
    return len(ready) == n


def measure(n: int, resync: float, window: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-steady-kube-") as tmp:
        workdir = Path(tmp)
        log = workdir / "requests.jsonl"
        os.environ[REQUEST_LOG_ENV] = str(log)  # inherited by the sandbox API process at start
        box = Sandbox(workdir, resync_seconds=resync).start()
        try:
            box.kubectl("create", "namespace", "steady")
            docs = [tenant("steady", f"t{i}") for i in range(n)]
            box.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
            box.wait_for(lambda: all_ready(box, "steady", n), timeout=600.0, interval=1.0, what="all Ready")
            time.sleep(2 * resync)  # every tenant's first periodic pass (within two intervals) has converged it
            start, passes0 = len(requests(log)), box.operator_log_text().count(PASS_DONE)
            time.sleep(window)
            seen, passes = requests(log)[start:], box.operator_log_text().count(PASS_DONE) - passes0
        finally:
            box.stop()
    tenant_side: Counter[str] = Counter()
    store_side: Counter[str] = Counter()
    for r in seen:
        if r["userAgent"].startswith(NOT_OPERATOR) or r["query"].get("watch"):
            continue
        what = kind_of(r)
        admin_secret = r["path"].startswith("/api/v1/namespaces/memory-system/")
        (store_side if admin_secret or what.startswith("PATCH memorystores") else tenant_side)[what] += 1
    return {"tenants": n, "passes": passes, "tenant": tenant_side, "store": store_side}


def show(result: dict[str, Any]) -> None:
    passes = max(result["passes"], 1)
    tenant_side: Counter[str] = result["tenant"]
    writes = sum(v for k, v in tenant_side.items() if k.startswith(WRITES))
    total = sum(tenant_side.values())
    detail = ", ".join(f"{v / passes:.2g} {k}" for k, v in sorted(tenant_side.items()))
    store = ", ".join(f"{v} {k}" for k, v in sorted(result["store"].items()))
    print(f"{result['tenants']} tenants, {result['passes']} tenant passes in the window: "
          f"{total / passes:.2f} requests per pass ({writes / passes:.2f} writes): {detail}")  # fmt: skip
    print(f"  the store's side over the window: {store or 'none'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--resync", type=float, default=5.0, help="the operator's timer interval, seconds")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of steady state counted")
    args = parser.parse_args(argv)
    for n in args.tenants:
        show(measure(n, args.resync, args.window))
    return 0


if __name__ == "__main__":
    sys.exit(main())
