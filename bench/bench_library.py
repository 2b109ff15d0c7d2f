"""Append and read cost of the agent memory library against the seed's pattern and a raw RPUSH, by history length.

On one engine in one run, for histories of 10, 1,000 and 100,000 messages (built with pipelined bulk writes):
(a) the library with encryption, masking (all detectors) and the hash-chained audit trail (reads audited too),
every message holding an e-mail address and a card number, (a') the same with messages holding no personal data,
(b) the library with all three off, (c) the seed's pattern (GET the whole JSON history, append, SET it back),
(d) a raw redis-py RPUSH (the floor). Each variant appends `--appends` messages one by one and reads the last
50 messages `--reads` times; (a), (a'), (b) and (d) take turns call by call, so drifts in machine speed hit them alike.
The seed pattern is timed on its own, and at 100,000 messages appends only `--blob-appends-large` times (each
append rewrites ~10 MB). The tenant and its ACL users are provisioned with the operator's own code.

    .venv/bin/python bench/bench_library.py [--appends 1000] [--redis-server /usr/bin/redis-server]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import redis

from memory_client import AgentMemory, MemoryConfig
from memory_operator.builders.acl import audit_key, plan_acl_users, tenant_prefix
from memory_operator.clients.redis_admin import RedisAdmin
from memory_sandbox.engine import Engine

LENGTHS = (10, 1_000, 100_000)
BATCH = 1_000
TEXT = "Customer jane.doe@example.com says order 4471 was charged twice on card 4111 1111 1111 1111; refund by Friday."
# As long, without personal data: what most of an agent's messages look like.
PLAIN = "Customer says order 4471 was charged twice on the card on file; the refund should arrive by Friday, thanks."


def provision(engine: Engine) -> dict[str, str]:
    """The env of the tenant user, as its credentials Secret (and keys Secret) would give it."""
    namespace, name = "bench", "library"
    with RedisAdmin(engine.url, username=engine.admin_username, password=engine.admin_password) as admin:
        user = plan_acl_users(namespace, name, "minimal", [])[0]
        password = secrets.token_urlsafe(24)
        admin.set_user(user, password, admin.capabilities())
    key = {"id": "k1", "algorithm": "AES-256-GCM", "key": base64.b64encode(os.urandom(32)).decode(), "createdAt": ""}
    return {
        "REDIS_URL": f"redis://{quote(user.name)}:{quote(password)}@{engine.host}:{engine.port}/0",
        "REDIS_USERNAME": user.name,
        "MEMORY_TENANT_ID": f"{namespace}/{name}",
        "MEMORY_KEY_PREFIX": tenant_prefix(namespace, name),
        "MEMORY_ISOLATION": "minimal",
        "MEMORY_ENCRYPTION": "required",
        "MEMORY_AUDIT_KEY": audit_key(namespace, name),
        "MEMORY_KEYRING": json.dumps({"version": 1, "active": "k1", "keys": [key]}),
    }


def interleaved_medians_ms(calls: dict[str, tuple[int, Callable[[], object]]]) -> dict[str, float]:
    """Median duration of each call, the calls taken in turns (one of each per round, each up to its count).

    Turns, not one variant after another: on a shared machine the speed drifts over seconds, and a variant
    measured in a slow phase would look worse than it is. The median, not the mean: other processes add
    outliers that say nothing about us.
    """
    durations: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(max(count for count, _ in calls.values())):
        for name, (count, call) in calls.items():
            if i < count:
                start = time.perf_counter()
                call()
                durations[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1000 for name, values in durations.items()}


class Variant:
    label = ""

    def build(self, length: int) -> None: ...
    def append(self) -> None: ...
    def read_last(self, n: int) -> object: ...


class Library(Variant):
    def __init__(self, memory: AgentMemory, label: str, conversation: str, text: str = TEXT) -> None:
        self.label = label
        self.memory = memory
        self.conversation = conversation
        self.text = text

    def build(self, length: int) -> None:
        self.chat = self.memory.conversation(f"{self.conversation}-{length}", "subject-1", agent="bench")
        for start in range(0, length, BATCH):
            self.chat.extend([("human", self.text)] * min(BATCH, length - start))

    def append(self) -> None:
        self.chat.append("human", self.text)

    def read_last(self, n: int) -> object:
        return self.chat.last(n)


class SeedBlob(Variant):
    """The seed's DistributedConversationMemory: the whole history is one JSON string, rewritten per save."""

    label = "(c) seed: rewrite JSON blob"

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def build(self, length: int) -> None:
        self.key = f"{self.prefix}blob:{length}"
        message = {"role": "human", "content": TEXT, "timestamp": "2026-01-01T00:00:00"}
        self.client.set(self.key, json.dumps([message] * length))

    def append(self) -> None:
        history = json.loads(self.client.get(self.key) or b"[]")
        history.append({"role": "human", "content": TEXT, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self.client.set(self.key, json.dumps(history))

    def read_last(self, n: int) -> object:
        return json.loads(self.client.get(self.key) or b"[]")[-n:]


class RawList(Variant):
    label = "(d) raw redis-py RPUSH"

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def build(self, length: int) -> None:
        self.key = f"{self.prefix}raw:{length}"
        payload = json.dumps({"role": "human", "content": TEXT})
        with self.client.pipeline(transaction=False) as pipe:
            for start in range(0, length, BATCH):
                pipe.rpush(self.key, *[payload] * min(BATCH, length - start))
            pipe.execute()

    def append(self) -> None:
        self.client.rpush(self.key, json.dumps({"role": "human", "content": TEXT}))

    def read_last(self, n: int) -> object:
        return [json.loads(v) for v in self.client.lrange(self.key, -n, -1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--blob-appends-large", type=int, default=10)
    parser.add_argument("--redis-server", type=Path, default=None, help="a redis-server binary instead of valkey")
    args = parser.parse_args()
    with Engine(binary=args.redis_server) as engine:
        env = provision(engine)
        full = AgentMemory.from_env({**env, "MEMORY_MASKING": "email,phone,ssn,payment_card,iban,ip_address"})
        off = AgentMemory(MemoryConfig.from_env({**env, "MEMORY_ENCRYPTION": "disabled"}), audit=False)
        raw = redis.Redis.from_url(env["REDIS_URL"])
        prefix = env["MEMORY_KEY_PREFIX"]
        seed = SeedBlob(raw, prefix)
        variants: list[Variant] = [
            Library(full, "(a) library: encryption+masking+audit", "full"),
            Library(full, "(a') the same, no personal data", "plain", PLAIN),
            Library(off, "(b) library: all three off", "off"),
            seed,
            RawList(raw, prefix),
        ]
        engine_name = "redis" if args.redis_server else "valkey"
        print(f"engine: {engine_name}, appends per cell: {args.appends}, reads of the last 50: {args.reads}\n")
        print(f"{'variant':<40} {'history':>8} {'append ms':>10} {'read 50 ms':>11}   (medians)")
        floor: dict[int, float] = {}
        results: dict[tuple[str, int], float] = {}
        for length in LENGTHS:
            for variant in variants:
                variant.build(length)
            # The library variants and the floor take turns; the seed pattern is timed on its own, since its
            # rewrites of up to 10 MB flush the caches and would slow whichever variant runs after it.
            turns = [v for v in variants if not isinstance(v, SeedBlob)]
            seed_appends = args.blob_appends_large if length >= 100_000 else args.appends
            appends = interleaved_medians_ms({v.label: (args.appends, v.append) for v in turns})
            appends |= interleaved_medians_ms({seed.label: (seed_appends, seed.append)})
            reads = interleaved_medians_ms({v.label: (args.reads, lambda v=v: v.read_last(50)) for v in turns})
            reads |= interleaved_medians_ms({seed.label: (min(args.reads, seed_appends), lambda: seed.read_last(50))})
            for variant in variants:
                results[(variant.label, length)] = appends[variant.label]
                print(f"{variant.label:<40} {length:>8} {appends[variant.label]:>10.3f} {reads[variant.label]:>11.3f}")
            floor[length] = appends[RawList.label]
        print("\nappend cost relative to (d):")
        for length in LENGTHS:
            ratio = {v.label.split()[0]: results[(v.label, length)] / floor[length] for v in variants}
            ratios = ", ".join(f"{name} {value:.2f}x" for name, value in ratio.items())
            print(f"  {length:>7} messages: {ratios}")
        verdict = full.verify_audit()
        print(f"\naudit chain after the run: ok={verdict.ok}, {verdict.checked} events")
        full.close()
        off.close()
        raw.close()


if __name__ == "__main__":
    main()
