"""Put, get and search latency of `TenantStore` (LangGraph's BaseStore on Valkey) against LangGraph's InMemoryStore.

One engine, one run: (a) ours with encryption and the audit trail on (reads audited too), (b) ours with both off,
(c) `langgraph.store.memory.InMemoryStore` (the floor: a dict in this process). Each store first holds `--namespaces`
namespaces of `--items` items; then puts (a new item each time), gets and searches (a filter on one namespace,
limit 10) are taken in turns, call by call, so drifts in machine speed hit the variants alike. Median and p95 in
ms, as a Markdown table. The tenant and its ACL user are provisioned with the operator's own code.

    .venv/bin/python bench/bench_langgraph_store.py [--calls 500] [--items 100] [--namespaces 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from bench_library import provision
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from memory_client import AgentMemory
from memory_client.langgraph.store import TenantStore
from memory_sandbox.engine import Engine


def value(i: int) -> dict[str, object]:
    return {"text": f"the user prefers option {i} for deliveries on weekdays", "score": i % 10, "kind": "pref"}


def fill(store: BaseStore, namespaces: int, items: int) -> None:
    for n in range(namespaces):
        for i in range(items):
            store.put(("users", f"u{n}", "memories"), f"m{i}", value(i))


def operations(
    store: BaseStore, ns: tuple[str, ...], items: int
) -> tuple[Callable[[int], object], Callable[[int], object], Callable[[int], object]]:
    """The i-th put (a new item), get (an existing one) and search (a filter over one namespace) on `store`."""

    def put(i: int) -> object:
        store.put(("users", "new"), f"n{i}", value(i))
        return None

    def get(i: int) -> object:
        return store.get(ns, f"m{i % items}")

    def search(_: int) -> object:
        return store.search(ns, filter={"score": {"$gte": 5}, "kind": "pref"}, limit=10)

    return put, get, search


def timed(calls: dict[str, tuple[int, Callable[[int], object]]]) -> dict[str, list[float]]:
    durations: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(max(count for count, _ in calls.values())):
        for name, (count, call) in calls.items():
            if i < count:
                start = time.perf_counter()
                call(i)
                durations[name].append((time.perf_counter() - start) * 1000)
    return durations


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--namespaces", type=int, default=10)
    args = parser.parse_args()
    with Engine() as engine:
        env = provision(engine)
        on = TenantStore(AgentMemory.from_env(env, audit=True), agent="bench-on")
        off = TenantStore(
            AgentMemory.from_env({**env, "MEMORY_ENCRYPTION": "disabled"}, audit=False), agent="bench-off"
        )
        stores: dict[str, BaseStore] = {
            "TenantStore, encryption + audit on": on,
            "TenantStore, encryption + audit off": off,
            "InMemoryStore (LangGraph, in process)": InMemoryStore(),
        }
        for store in stores.values():
            fill(store, args.namespaces, args.items)
        ns = ("users", "u0", "memories")
        searches = max(1, args.calls // 5)
        calls: dict[str, tuple[int, Callable[[int], object]]] = {}
        for label, store in stores.items():
            put, get, search = operations(store, ns, args.items)
            calls[f"put|{label}"] = (args.calls, put)
            calls[f"get|{label}"] = (args.calls, get)
            calls[f"search|{label}"] = (searches, search)
        durations = timed(calls)
        for store in (on, off):
            store.memory.close()
    print(
        f"\n{args.namespaces} namespaces x {args.items} items held; {args.calls} puts and gets, "
        f"{searches} searches (filter over one namespace of {args.items}, limit 10) per variant\n"
    )
    print("| store | put median | put p95 | get median | get p95 | search median | search p95 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label in stores:
        cells = []
        for op in ("put", "get", "search"):
            values = durations[f"{op}|{label}"]
            cells += [f"{statistics.median(values):.3f} ms", f"{p95(values):.3f} ms"]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
