"""Cost of the tenant's jobs against a bare walk of the same data, side by side in one run on one engine.

Retention (default): a tenant-like layout of `--keys` keys in the library's index (`<shared>sizes`: key -> bytes):
7 in 10 conversation streams of 4 entries (every other one with 2 entries older than the maximum), 2 in 10
context hashes, 1 in 10 an index entry of a key that no longer exists, and 1 in 7 of the keys that exist without a
TTL. Then, 3 times, in turns: (a) the baseline, a bare HSCAN (COUNT 1000) + pipelined PTTL walk through redis-py,
(a') the same walk with hiredis-packed commands (a floor, for reference), (b) `run_retention` on a fresh copy of
the layout (it changes what it walks). Both run as an ACL user limited to the commands retention needs.

    .venv/bin/python bench/bench_jobs.py [--keys 100000] [--rounds 3]

Report (`--report-events N`): the audit stream holds N hash-chained events shaped like the library's; times
(a) a bare paged XRANGE walk (COUNT 1000), (b) `memory_jobs.report.run_report(client, env)`, each with the growth
of the process's peak RSS (`getrusage` ru_maxrss after minus before) over the call.

    .venv/bin/python bench/bench_jobs.py --report-events 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis

from memory_client.audit import GENESIS, AuditEvent, chain_hash
from memory_client.wire import Command, pack, read_replies
from memory_jobs.env import JobEnv
from memory_jobs.report import run_report
from memory_jobs.retention import RetentionResult, run_retention
from memory_sandbox.engine import Engine

DAY_MS = 86_400_000
RETENTION_DAYS = 30
WALK_COUNT = 1000
CHUNK = 20_000  # commands per pipelined write while filling
NAMESPACE, NAME = "bench", "jobs"
PREFIX = f"mem:{NAMESPACE}:{NAME}:"
# What the retention job may do (as the jobs' ACL user will): read the index and key facts, trim, expire,
# drop stale index entries, and record its progress.
JOB_COMMANDS = ("hscan", "type", "pttl", "xtrim", "pexpire", "hdel", "hincrby", "hget", "hset")


def job_env(engine: Engine, username: str, password: str) -> JobEnv:
    return JobEnv.from_env(
        {
            "REDIS_URL": f"redis://{username}:{password}@{engine.host}:{engine.port}/0",
            "MEMORY_TENANT_ID": f"{NAMESPACE}/{NAME}",
            "MEMORY_KEY_PREFIX": PREFIX,
            "MEMORY_RETENTION_DAYS": str(RETENTION_DAYS),
            "MEMORY_AUDIT_RETENTION_DAYS": "365",
            "MEMORY_ENCRYPTION": "required",
            "MEMORY_FRAMEWORKS": "GDPR,HIPAA,SOX,PCI_DSS",
            "MEMORY_RESULTS_PREFIX": f"jobs:{NAMESPACE}:{NAME}:",  # as the jobs' credentials Secret gives it
        }
    )


def job_user(admin: redis.Redis, engine: Engine, keys: Iterable[str]) -> tuple[str, str]:
    """An ACL user allowed only the retention job's commands on the tenant's prefix and the given keys."""
    username, password = f"bench_{NAMESPACE}_{NAME}_jobs", secrets.token_urlsafe(24)
    patterns = [f"~{PREFIX}*", *(f"~{key}" for key in keys)]
    admin.execute_command(
        "ACL", "SETUSER", username, "reset", "on", f">{password}", *patterns, "-@all",
        *(f"+{c}" for c in JOB_COMMANDS), "+client|setinfo",
    )  # fmt: skip
    return username, password


def send(conn: Any, commands: Iterable[Command]) -> None:
    """Write commands pipelined in chunks, raw (hiredis-packed), checking every reply."""
    chunk: list[Command] = []
    for command in commands:
        chunk.append(command)
        if len(chunk) >= CHUNK:
            _flush(conn, chunk)
            chunk = []
    if chunk:
        _flush(conn, chunk)


def _flush(conn: Any, chunk: list[Command]) -> None:
    conn.send_packed_command([pack(chunk)])
    for reply in read_replies(conn, len(chunk)):
        if isinstance(reply, redis.ResponseError):
            raise reply


class Layout:
    """The tenant-like data and what a retention pass over it must find."""

    def __init__(self, env: JobEnv, keys: int, now_ms: int) -> None:
        self.env, self.keys, self.now_ms = env, keys, now_ms
        expected = RetentionResult(keys_checked=keys)
        for i in range(keys):
            kind = self.kind(i)
            if kind == "gone":
                expected.stale_index_entries += 1
                continue
            expected.entries_removed += 2 if kind == "stream" and i % 2 == 0 else 0
            expected.ttl_set += 1 if i % 7 == 0 else 0
        self.expected = expected

    @staticmethod
    def kind(i: int) -> str:
        return "gone" if i % 10 == 0 else "hash" if i % 10 < 3 else "stream"

    def key(self, i: int) -> str:
        if self.kind(i) == "hash":
            return f"{self.env.shared_prefix}ctx:notes{i}"
        return f"{self.env.key_prefix}agent:a{i % 4}:conv:c{i}:{i:032x}"

    def commands(self) -> Iterator[Command]:
        env, now, ttl = self.env, self.now_ms, RETENTION_DAYS * DAY_MS
        total = 0
        for i in range(self.keys):
            key, kind, size = self.key(i), self.kind(i), 100 + i % 50
            total += size
            yield ("HSET", env.sizes_key, key, size)
            if kind == "hash":
                yield ("HSET", key, "v", "\x01" + "x" * 40)
            elif kind == "stream":  # every other stream: its first 2 entries are older than the maximum
                days = (40, 35, 2, 1) if i % 2 == 0 else (4, 3, 2, 1)
                for n, ago in enumerate(days):
                    yield ("XADD", key, f"{now - ago * DAY_MS}-{n}", "m", b"\x01" + b"y" * 60)
            if kind != "gone" and i % 7 != 0:
                yield ("PEXPIRE", key, ttl)
        yield ("HSET", env.usage_key, "bytes", total)

    def fill(self, admin: redis.Redis) -> None:
        admin.flushall()
        conn = admin.connection_pool.get_connection()
        try:
            send(conn, self.commands())
        finally:
            admin.connection_pool.release(conn)


def bare_walk(client: redis.Redis, env: JobEnv) -> int:
    """(a) HSCAN the index, PTTL every key, one redis-py pipeline per page: the least a pass must do."""
    cursor, seen = 0, 0
    while True:
        cursor, batch = client.hscan(env.sizes_key, cursor, count=WALK_COUNT)
        with client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.pttl(key)
            seen += len(pipe.execute())
        if cursor == 0:
            return seen


def packed_walk(client: redis.Redis, env: JobEnv) -> int:
    """(a') The same walk with hiredis-packed commands and replies read in bulk: redis-py's overhead removed."""
    conn = client.connection_pool.get_connection()
    try:
        cursor, seen = b"0", 0
        while True:
            conn.send_packed_command([pack([("HSCAN", env.sizes_key, cursor, "COUNT", WALK_COUNT)])])
            cursor, flat = read_replies(conn, 1)[0]
            keys = flat[::2]
            conn.send_packed_command([pack([("PTTL", k) for k in keys])])
            seen += len(read_replies(conn, len(keys)))
            if cursor == b"0":
                return seen
    finally:
        client.connection_pool.release(conn)


def timed(call: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def bench_retention(engine: Engine, keys: int, rounds: int) -> None:
    admin = engine.admin_client()
    probe = job_env(engine, "x", "x")
    username, password = job_user(admin, engine, [probe.result_key("retention")])
    env = job_env(engine, username, password)
    client = redis.Redis.from_url(env.redis_url, socket_timeout=60)
    layout = Layout(env, keys, int(time.time() * 1000))
    times: dict[str, list[float]] = {"walk": [], "packed": [], "retention": []}
    print(f"{keys:,} keys in the index; {rounds} rounds, in turns\n")
    print(f"{'round':>5} {'(a) walk s':>11} {'(a2) packed s':>14} {'(b) retention s':>16} {'b/a rate':>9}")
    for r in range(rounds):
        layout.fill(admin)
        walked = timed(lambda: bare_walk(client, env))
        packed = timed(lambda: packed_walk(client, env))
        retention = timed(lambda: run_retention(client, env, now_ms=layout.now_ms))
        assert walked[1] == packed[1] == keys, (walked[1], packed[1])
        assert retention[1] == layout.expected, (retention[1], layout.expected)
        again = run_retention(client, env, now_ms=layout.now_ms)  # idempotent: nothing left to do
        assert (again.entries_removed, again.ttl_set, again.stale_index_entries) == (0, 0, 0), again
        times["walk"].append(walked[0])
        times["packed"].append(packed[0])
        times["retention"].append(retention[0])
        print(f"{r + 1:>5} {walked[0]:>11.2f} {packed[0]:>14.2f} {retention[0]:>16.2f} "
              f"{walked[0] / retention[0]:>8.0%}")  # fmt: skip
    print(f"\nresult of each retention pass: {layout.expected}\n")
    print(f"{'':<28} {'min s':>7} {'median s':>9} {'keys/s (median)':>16}")
    labels = {"walk": "(a) HSCAN+PTTL, redis-py", "packed": "(a2) HSCAN+PTTL, packed", "retention": "(b) run_retention"}
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{labels[name]:<28} {min(values):>7.2f} {median:>9.2f} {keys / median:>16,.0f}")
    walk, packed, ret = (statistics.median(times[n]) for n in ("walk", "packed", "retention"))
    print(f"\nretention's rate / the walk's (medians): {walk / ret:.0%} of (a), {packed / ret:.0%} of (a2)")
    client.close()
    admin.close()


def audit_commands(key: str, events: int, now_ms: int) -> Iterator[Command]:
    """Hash-chained events as the library appends them: fields(), then the link to the previous `h`, then `h`."""
    actions = ("save", "read", "save", "read", "delete", "context.update", "export", "trim")
    start = now_ms - events  # one event per millisecond, oldest first, ending now
    prev = GENESIS
    for i in range(events):
        subject = f"{i % 997:032x}" if i % 3 == 0 else ""
        event = AuditEvent(actions[i % len(actions)], target=f"{PREFIX}agent:a{i % 4}:conv:c{i % 5000}",
                           count=1 + i % 5, subject=subject, masked={"email": 1} if i % 11 == 0 else {})  # fmt: skip
        fields = event.fields(f"mt_{NAMESPACE}_{NAME}_a{i % 4}", start + i)
        digest = chain_hash(prev, fields)
        yield ("XADD", key, f"{start + i}-0", *(part for item in fields.items() for part in item), "prev", prev,
               "h", digest)  # fmt: skip
        prev = digest


def peak_rss_growth_mib(call: Callable[[], object]) -> tuple[float, float, object]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds, out = timed(call)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return seconds, (after - before) / 1024, out  # ru_maxrss is in KiB on Linux


def xrange_walk(client: redis.Redis, key: str) -> int:
    start, seen = "-", 0
    while True:
        page = client.xrange(key, start, "+", count=1000)
        seen += len(page)
        if len(page) < 1000:
            return seen
        start = "(" + page[-1][0].decode()


def bench_report(engine: Engine, events: int) -> None:
    admin = engine.admin_client(socket_timeout=600)
    # As admin: the report's reads are being reworked (seal, results), and no user of ours would match them.
    env = job_env(engine, engine.admin_username, engine.admin_password)
    now_ms = int(time.time() * 1000)
    started = time.perf_counter()
    child = os.fork()  # filled by a child process, so its memory never counts in this process's peak RSS
    if child == 0:
        try:
            filler = engine.admin_client(socket_timeout=600)
            send(filler.connection_pool.get_connection(), audit_commands(env.audit_key, events, now_ms))
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    print(f"audit stream: {admin.xlen(env.audit_key):,} events (filled in {time.perf_counter() - started:.1f} s); "
          "the data index is empty\n")  # fmt: skip
    print("peak RSS growth: getrusage(RUSAGE_SELF).ru_maxrss after the call minus before it "
          f"(before the first: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")  # fmt: skip
    seconds, grown, seen = peak_rss_growth_mib(lambda: xrange_walk(admin, env.audit_key))
    print(f"(a) paged XRANGE walk (COUNT 1000): {seconds:.2f} s, {int(seen) / seconds:,.0f} events/s, "  # type: ignore[call-overload]
          f"peak RSS +{grown:.0f} MiB")  # fmt: skip
    try:
        seconds, grown, out = peak_rss_growth_mib(lambda: run_report(admin, env, now_ms=None))
    except Exception as exc:  # the report is being rewritten: say how it failed, go on
        print(f"(b) run_report failed: {type(exc).__name__}: {exc}")
        return
    fields: dict[str, str] = out  # type: ignore[assignment]
    print(f"(b) run_report: {seconds:.2f} s, {events / seconds:,.0f} events/s, peak RSS +{grown:.0f} MiB "
          f"(score {fields.get('score')}, violations {fields.get('violations')}, "
          f"report {len(fields.get('report', '')):,} bytes)")  # fmt: skip
    try:
        failed = [v["check"] for v in json.loads(fields["report"])["violations"]]
    except (KeyError, TypeError, ValueError):
        failed = ["?"]
    print(f"    failed checks: {', '.join(failed) or 'none'}")
    admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--report-events", type=int, nargs="?", const=1_000_000, default=None, metavar="N")
    args = parser.parse_args()
    with Engine() as engine:
        if args.report_events is None:
            bench_retention(engine, args.keys, args.rounds)
        else:
            bench_report(engine, args.report_events)


if __name__ == "__main__":
    main()
