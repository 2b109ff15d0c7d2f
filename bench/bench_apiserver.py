"""Request cost of the sandbox API as the number of requests served grows.

Starts the API server's CLI as a child process, then through the `kubernetes` client over HTTP:
N creates, then N gets, then N merge patches of ConfigMaps; prints the mean latency of the first and
the last hundred of each, and of a full list at the end. Flat first/last figures mean the cost does not
grow with requests served (kmock 0.8 went from 5 ms to 230 ms per request over ~2,000 requests).

    .venv/bin/python bench/bench_apiserver.py [--count 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from kubernetes import client, config

from memory_sandbox.apiserver import SandboxApiProcess

WINDOW = 100


def config_map(i: int) -> dict[str, object]:
    return {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}}


def timed(count: int, call: Callable[[int], object]) -> list[float]:
    durations = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        durations.append(time.perf_counter() - start)
    return durations


def report(label: str, durations: list[float]) -> None:
    first = statistics.mean(durations[:WINDOW]) * 1000
    last = statistics.mean(durations[-WINDOW:]) * 1000
    figures = f"first {WINDOW}: {first:6.2f} ms/req   last {WINDOW}: {last:6.2f} ms/req   ratio {last / first:4.2f}"
    print(f"{label:<8} n={len(durations):<6} {figures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    with SandboxApiProcess() as api:
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(api.kubeconfig)))
        namespace = "default"
        report(
            "create",
            timed(
                args.count,
                lambda i: core.create_namespaced_config_map(
                    namespace, {"metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}}
                ),
            ),
        )
        report("get", timed(args.count, lambda i: core.read_namespaced_config_map(f"cm-{i}", namespace)))
        report(
            "patch",
            timed(
                args.count, lambda i: core.patch_namespaced_config_map(f"cm-{i}", namespace, {"data": {"j": str(i)}})
            ),
        )
        start = time.perf_counter()
        items = core.list_namespaced_config_map(namespace).items
        print(f"list     {len(items)} items in one request: {(time.perf_counter() - start) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
