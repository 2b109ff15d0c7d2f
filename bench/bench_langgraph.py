"""Checkpoint put and get_tuple latency, and a 50-step graph run, of `TenantCheckpointer` (LangGraph's
BaseCheckpointSaver on Valkey) against LangGraph's InMemorySaver (the floor) and SqliteSaver (a peer).

One engine, one run: (a) ours with encryption and the audit trail on (reads audited too), (b) ours with both off,
(c) `InMemorySaver` (a dict in this process), (d) `SqliteSaver` (langgraph-checkpoint-sqlite, a file in a temp dir,
its default synchronous mode). put: a new checkpoint of a thread whose `messages` channel (10 messages, ~1 KB)
changed; get_tuple: the newest checkpoint of a thread of 50 (its values and pending writes). Puts and gets are taken
in turns, call by call, so drifts in machine speed hit the variants alike; then `--runs` runs of a graph of 50 steps
(each step appends a message: 51 puts, 50 put_writes), again in turns. Median and p95 in ms, as a Markdown table.
The tenant and its ACL user are provisioned with the operator's own code.

    .venv/bin/python bench/bench_langgraph.py [--calls 500] [--runs 10]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

from bench_langgraph_store import p95, timed
from bench_library import provision
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from memory_client import AgentMemory
from memory_client.langgraph import TenantCheckpointer
from memory_sandbox.engine import Engine

STEPS = 50


class State(TypedDict):
    messages: Annotated[list[Any], add_messages]
    n: int


def graph(saver: BaseCheckpointSaver[Any]) -> Any:
    def step(state: State) -> dict[str, Any]:
        return {
            "messages": [AIMessage(f"step {state['n']}: looked up the order and found it shipped")],
            "n": state["n"] + 1,
        }

    builder = StateGraph(State)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: END if s["n"] >= STEPS else "step")
    return builder.compile(checkpointer=saver)


def history(i: int) -> list[Any]:
    return [HumanMessage(f"message {i}.{j}: where is my order 1234? it was due on monday") for j in range(10)]


def operations(saver: BaseCheckpointSaver[Any]) -> tuple[Callable[[int], object], Callable[[int], object]]:
    """The i-th put (a new checkpoint, its messages changed) and get_tuple (the newest of a 50-checkpoint thread)."""
    parent: dict[str, Any] = {"configurable": {"thread_id": "bench-put", "checkpoint_ns": ""}}
    read = {"configurable": {"thread_id": "bench-get", "checkpoint_ns": ""}}
    version: list[Any] = [None]
    held: dict[str, Any] = {"configurable": {"thread_id": "bench-get", "checkpoint_ns": ""}}
    for i in range(STEPS):
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": history(i)}
        version[0] = saver.get_next_version(version[0], None)
        checkpoint["channel_versions"] = {"messages": version[0]}
        held = saver.put(held, checkpoint, {"step": i, "source": "loop"}, {"messages": version[0]})
        saver.put_writes(held, [("messages", [AIMessage(f"answer {i}")])], f"task-{i}")

    def put(i: int) -> object:
        nonlocal parent
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": history(i)}
        version[0] = saver.get_next_version(version[0], None)
        checkpoint["channel_versions"] = {"messages": version[0]}
        parent = saver.put(parent, checkpoint, {"step": i, "source": "loop"}, {"messages": version[0]})
        return None

    def get(_: int) -> object:
        return saver.get_tuple(read)

    return put, get


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with Engine() as engine, tempfile.TemporaryDirectory() as tmp:
        env = provision(engine)
        on = TenantCheckpointer(AgentMemory.from_env(env, audit=True), agent="bench-on")
        off = TenantCheckpointer(
            AgentMemory.from_env({**env, "MEMORY_ENCRYPTION": "disabled"}, audit=False), agent="bench-off"
        )
        connection = sqlite3.connect(Path(tmp) / "checkpoints.sqlite", check_same_thread=False)
        savers: dict[str, BaseCheckpointSaver[Any]] = {
            "TenantCheckpointer, encryption + audit on": on,
            "TenantCheckpointer, encryption + audit off": off,
            "InMemorySaver (LangGraph, in process)": InMemorySaver(),
            "SqliteSaver (langgraph-checkpoint-sqlite, a file)": SqliteSaver(connection),
        }
        calls: dict[str, tuple[int, Callable[[int], object]]] = {}
        for label, saver in savers.items():
            put, get = operations(saver)
            calls[f"put|{label}"] = (args.calls, put)
            calls[f"get|{label}"] = (args.calls, get)
        durations = timed(calls)
        runs: dict[str, tuple[int, Callable[[int], object]]] = {}
        for label, saver in savers.items():
            compiled = graph(saver)

            def run(i: int, compiled: Any = compiled, label: str = label) -> object:
                config = {"configurable": {"thread_id": f"run-{label}-{i}"}, "recursion_limit": 3 * STEPS}
                return compiled.invoke({"messages": [HumanMessage("track order 1234")], "n": 0}, config)

            runs[f"graph|{label}"] = (args.runs, run)
        durations.update(timed(runs))
        for saver in (on, off):
            saver.memory.close()
        connection.close()
    print(
        f"\n{args.calls} puts (10 messages, ~1 KB, per checkpoint) and get_tuples (newest of {STEPS}) per variant, "
        f"{args.runs} runs of a {STEPS}-step graph\n"
    )
    print("| checkpointer | put median | put p95 | get_tuple median | get_tuple p95 | 50-step run median | run p95 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label in savers:
        cells = []
        for op in ("put", "get", "graph"):
            values = durations[f"{op}|{label}"]
            spread = p95(values) if len(values) > 1 else values[0]
            cells += [f"{statistics.median(values):.3f} ms", f"{spread:.3f} ms"]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
