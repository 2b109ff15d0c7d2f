"""The operator's memory as the fleet grows: RSS after each batch of tenants is Ready, up to 10,000.

    .venv/bin/python bench/bench_fleet_memory.py [--tenants 10000] [--batch 1000] [--per-namespace 100]

What is simulated: one sandbox (emulated API server, embedded valkey) and the operator as a real process
(`python -m memory_operator`, cluster-wide, watching its Secrets and CronJobs as deployed). Tenants are applied
in batches, `--per-namespace` to a namespace, minimal isolation, no agents and no memory written; each batch is
waited for until every tenant in it is Ready, then the operator's RSS is read from /proc (VmRSS, and VmHWM: the
peak so far). After the last batch it runs two periodic passes over the whole fleet (resync 60 s) and is read
again. Baseline, same run: the no-op kopf operator of bench_tenants.py (its handler only sets Ready) started
over the same tenants once ours has stopped; its RSS once it has resumed every one. Figures go to BENCHMARKS.md.

`--tracemalloc FRAMES`: once the first batch is Ready the operator starts tracemalloc (FRAMES deep; slower and
bigger for it), and the growth of what it traces until the last batch is Ready is printed by where it was allocated:
the innermost frame in our code (memory_operator), else in kopf, else the innermost frame. The no-op baseline and
the periodic passes are skipped in this mode.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import yaml
from bench_tenants import GROUP, PLURAL, VERSION, start_noop_operator, stop
from kubernetes import client as k8s

from memory_sandbox.sandbox import Sandbox

RESYNC = 60.0

# sitecustomize for --tracemalloc: imported by every Python process with the work directory on PYTHONPATH, it acts
# in the operator only; a snapshot is written for each `<name>.request` file that appears beside it.
TRACER = """
import sys
if any("memory_operator" in arg for arg in sys.orig_argv):
    import gc, os, pathlib, threading, time, tracemalloc
    _dir = pathlib.Path(os.environ["BENCH_TRACEMALLOC_DIR"])

    def _serve():
        while True:
            for request in sorted(_dir.glob("*.request")):
                if not tracemalloc.is_tracing():  # from the first request on: tracing the imports takes minutes
                    tracemalloc.start(int(os.environ["BENCH_TRACEMALLOC_FRAMES"]))
                gc.collect()
                snapshot = tracemalloc.take_snapshot()
                partial = request.with_suffix(".partial")
                snapshot.dump(str(partial))
                partial.rename(request.with_suffix(".snapshot"))
                request.unlink()
            time.sleep(0.5)

    threading.Thread(target=_serve, name="bench-tracemalloc", daemon=True).start()
"""


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def fleet(indices: range, namespaces: list[str], per_namespace: int) -> str:
    """Tenants tenant-00042 etc., `per_namespace` to a namespace in order."""
    return yaml.safe_dump_all(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MemoryTenant",
            "metadata": {"name": f"tenant-{i:05}", "namespace": namespaces[i // per_namespace]},
            "spec": {"isolation": "minimal"},
        }
        for i in indices
    )


def count_ready(custom: k8s.CustomObjectsApi, reason: str | None = None) -> int:
    listed: Any = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    return sum(
        any(
            c.get("type") == "Ready" and c.get("status") == "True" and (reason is None or c.get("reason") == reason)
            for c in (t.get("status") or {}).get("conditions") or []
        )
        for t in listed["items"]
    )


def wait_count(custom: k8s.CustomObjectsApi, expected: int, reason: str | None = None, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while (seen := count_ready(custom, reason)) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{seen} of {expected} tenants Ready after {timeout:.0f}s")
        time.sleep(2.0)


def take_snapshot(workdir: Path, name: str, timeout: float = 900) -> tracemalloc.Snapshot:
    """A tracemalloc snapshot of the operator (started with TRACER), once it has written it."""
    (workdir / f"{name}.request").touch()
    path = workdir / f"{name}.snapshot"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no tracemalloc snapshot {name} after {timeout:.0f}s")
        time.sleep(0.5)
    return tracemalloc.Snapshot.load(str(path))


def site(traceback: tracemalloc.Traceback) -> tuple[str, str]:
    """(owner, file:line) an allocation is charged to: its innermost frame in our code or in kopf, whichever is
    more recent (kopf runs under our `__main__`, our handlers under kopf), else its innermost frame ("other")."""
    frames = list(reversed(traceback))  # a Traceback runs from the oldest frame to the most recent
    for frame in frames:
        for owner, marker in (("ours", "/memory_operator/"), ("kopf", "/kopf/")):
            if marker in frame.filename:
                return owner, f"{marker.strip('/')}/{frame.filename.split(marker, 1)[1]}:{frame.lineno}"
    frame = frames[0]
    return "other", f"{frame.filename.rsplit('site-packages/', 1)[-1]}:{frame.lineno}"


def allocation_report(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot, tenants: int, top: int = 40) -> str:
    """The growth from `first` to `last` by `site`, per tenant, largest first."""
    growth: dict[tuple[str, str], list[int]] = {}
    for stat in last.compare_to(first, "traceback"):
        entry = growth.setdefault(site(stat.traceback), [0, 0])
        entry[0] += stat.size_diff
        entry[1] += stat.count_diff
    owners = {owner: 0 for owner in ("ours", "kopf", "other")}
    for (owner, _), (size, _) in growth.items():
        owners[owner] += size
    total = sum(owners.values())
    kib = 1024 * tenants
    lines = [
        f"tracemalloc growth over {tenants:,} tenants: {total / 2**20:.1f} MiB, {total / kib:.1f} KiB a tenant "
        + ", ".join(f"{owner} {size / kib:.1f}" for owner, size in owners.items()),
        "| owner | where | KiB a tenant | blocks a tenant |",
        "| --- | --- | --- | --- |",
    ]
    for (owner, where), (size, count) in sorted(growth.items(), key=lambda item: -item[1][0])[:top]:
        lines.append(f"| {owner} | {where} | {size / kib:.2f} | {count / tenants:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--per-namespace", type=int, default=100)
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES", help="trace allocations (see above)")
    args = parser.parse_args()
    namespaces = [f"fleet-{n:03}" for n in range(-(-args.tenants // args.per_namespace))]
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        workdir = Path(tmp)
        if args.tracemalloc:
            (workdir / "sitecustomize.py").write_text(TRACER)
            os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [tmp, os.environ.get("PYTHONPATH")]))
            os.environ["BENCH_TRACEMALLOC_DIR"], os.environ["BENCH_TRACEMALLOC_FRAMES"] = tmp, str(args.tracemalloc)
        snapshots: list[tuple[int, tracemalloc.Snapshot]] = []
        box = Sandbox(workdir, resync_seconds=RESYNC).start(operator=False)
        try:
            for namespace in namespaces:
                box.kubectl("create", "namespace", namespace)
            box.start_operator()
            assert box.operator is not None
            pid = box.operator.pid
            with box.api_client() as api:
                custom = k8s.CustomObjectsApi(api)
                box.kubectl("wait", "--for=condition=Ready", "memorystore/sandbox", "--timeout=60s")
                rows.append(("ours, started", 0, *memory_mb(pid)))
                started, done = time.monotonic(), 0
                while done < args.tenants:
                    batch = min(args.batch, args.tenants - done)
                    manifest = fleet(range(done, done + batch), namespaces, args.per_namespace)
                    box.kubectl("apply", "-f", "-", input=manifest, timeout=1800)
                    done += batch
                    wait_count(custom, done)
                    rows.append((f"ours, {time.monotonic() - started:.0f} s in", done, *memory_mb(pid)))
                    print(rows[-1], flush=True)
                    if args.tracemalloc and (len(snapshots) == 0 or done >= args.tenants):
                        snapshots.append((done, take_snapshot(workdir, f"at-{done}")))
                if args.tracemalloc:
                    (first_done, first), (last_done, last) = snapshots[0], snapshots[-1]
                    print(allocation_report(first, last, last_done - first_done), flush=True)
                    return
                time.sleep(2 * RESYNC)
                rows.append((f"ours, after {2 * RESYNC:.0f} s of periodic passes", done, *memory_mb(pid)))
                box.stop_operator()
                noop = start_noop_operator(box, namespaces, workdir)
                try:
                    wait_count(custom, args.tenants, reason="NoOp")
                    rows.append(("no-op kopf, all resumed", args.tenants, *memory_mb(noop.pid)))
                finally:
                    stop(noop)
        finally:
            box.stop()
    print(f"load {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| operator | tenants Ready | RSS | peak RSS (VmHWM) |\n| --- | --- | --- | --- |")
    for what, count, rss, peak in rows:
        print(f"| {what} | {count:,} | {rss:.0f} MB | {peak:.0f} MB |")


if __name__ == "__main__":
    main()
