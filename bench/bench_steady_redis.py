"""The Redis side of one steady-state tenant pass -- usage and the ACL check -- before and after usage in O(tenant).

For each (tenants, keys per tenant), one engine is filled with that many tenants, each with one ACL user (set with
the operator's own code) and `keys` data keys indexed as the agent library indexes them (`S sizes` key -> bytes,
`S usage` bytes; 64-byte values, written with pipelined bulk commands). Then, in one run:

- now: `RedisAdmin.set_user` (one GETUSER for a converged user) and `RedisAdmin.usage` (the size index, HSCAN
  sample of `--sample` keys checked with MEMORY USAGE) for every tenant;
- before: the code at 6bd7ee2 -- SETUSER reset in MULTI with GETUSER before and after, then SCAN MATCH <prefix>*
  over the whole keyspace plus MEMORY USAGE of up to `--sample` keys -- for the first `--before-tenants` tenants
  (its cost per tenant does not depend on which tenant; the pass total is that times the tenants). The "now" pass
is timed after one untimed pass (warm connections).

And the hourly survey (`RedisAdmin.survey`: SCAN over the whole keyspace, then TYPE, PTTL and a probe of each
tenant's own keys), its "pass" being once an hour: before, one walk per tenant (SCAN MATCH <prefix>*, timed on
the same tenants as "before"); now, one walk for all of the store's tenants (memory_operator.surveys).

Reported per pass and per tenant: wall time and Redis commands (INFO commandstats deltas, connection handshakes
left out).

    .venv/bin/python bench/bench_steady_redis.py [--sizes 100x100,100x1000,1000x100,1000x1000] [--sample 200]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from memory_client import contract
from memory_operator.builders.acl import AclUser, ServerCapabilities, glob_escape, plan_acl_users, tenant_prefix
from memory_operator.clients.redis_admin import RedisAdmin, SurveyScope
from memory_sandbox.engine import Engine, calls_between

BATCH = 1_000
VALUE = b"x" * 64
PASSWORD = "bench-password"


@dataclass(frozen=True)
class Tenant:
    prefix: str
    user: AclUser


def seed(client: redis.Redis, admin: RedisAdmin, tenants: int, keys: int) -> list[Tenant]:
    """`tenants` tenants of `keys` indexed data keys each, and one converged ACL user each."""
    client.flushall()
    caps = admin.capabilities()
    out = []
    for t in range(tenants):
        prefix = tenant_prefix("bench", f"t{t}")
        shared = contract.shared_prefix(prefix)
        for start in range(0, keys, BATCH):
            names = [f"{prefix}agent:a:conv:{i}" for i in range(start, min(start + BATCH, keys))]
            with client.pipeline(transaction=False) as pipe:
                pipe.mset(dict.fromkeys(names, VALUE))
                pipe.hset(f"{shared}{contract.SIZES}", mapping=dict.fromkeys(names, len(VALUE)))
                pipe.hincrby(f"{shared}{contract.USAGE}", "bytes", len(VALUE) * len(names))
                pipe.execute()
        user = plan_acl_users("bench", f"t{t}", "minimal", [])[0]
        admin.set_user(user, PASSWORD, caps)
        out.append(Tenant(prefix, user))
    return out


def usage_before(client: redis.Redis, prefix: str, sample: int, batch: int = 500) -> tuple[int, int]:
    """`RedisAdmin.usage` as of 6bd7ee2: SCAN MATCH over the whole keyspace, MEMORY USAGE of the first `sample`."""
    shared = contract.shared_prefix(prefix)
    keys = total = 0
    picked: list[bytes] = []
    raw = prefix.encode()
    for key in client.scan_iter(match=glob_escape(prefix) + "*", count=batch):
        if not key.startswith(raw):
            continue
        total += 1
        keys += contract.counts_toward_key_quota(contract.as_text(key), shared)
        if len(picked) < sample:
            picked.append(key)
    measured = 0
    for start in range(0, len(picked), batch):
        with client.pipeline(transaction=False) as pipe:
            for key in picked[start : start + batch]:
                pipe.memory_usage(key)
            measured += sum(int(s) for s in pipe.execute() if s is not None)
    return keys, measured


def timed(engine: Engine, work: Callable[[], None]) -> tuple[float, dict[str, int]]:
    before = engine.command_calls()
    started = time.perf_counter()
    work()
    elapsed = time.perf_counter() - started
    return elapsed, calls_between(before, engine.command_calls())


def each(tenants: Iterable[Tenant], step: Callable[[Tenant], object]) -> Callable[[], None]:
    def run() -> None:
        for tenant in tenants:
            step(tenant)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", default="100x100,100x1000,1000x100,1000x1000", help="tenants x keys per tenant, comma-separated"
    )
    parser.add_argument("--sample", type=int, default=200, help="MEMORY USAGE sample per tenant (deps.usage_sample)")
    parser.add_argument("--before-tenants", type=int, default=20, help="tenants the old pass is timed on")
    args = parser.parse_args()
    print("| tenants x keys | | wall per pass | ms per tenant | Redis commands per tenant | of which |")
    print("| --- | --- | --- | --- | --- | --- |")
    with Engine() as engine, engine.admin_client() as client:
        for size in args.sizes.split(","):
            n, k = (int(x) for x in size.split("x"))
            with RedisAdmin(engine.url, username=engine.admin_username, password=engine.admin_password) as admin:
                tenants = seed(client, admin, n, k)
                caps = admin.capabilities()

                def now(tenant: Tenant, admin: RedisAdmin = admin, caps: ServerCapabilities = caps, k: int = k) -> None:
                    admin.set_user(tenant.user, PASSWORD, caps)
                    usage = admin.usage(tenant.prefix, sample=args.sample)
                    assert usage.keys == k, usage

                each(tenants, now)()  # untimed: warm connections, the first pass's GETUSERs after seeding
                wall, spent = timed(engine, each(tenants, now))
                report(n, k, "now", wall, wall, spent, n)
            some = tenants[: args.before_tenants]
            # A new connection has converged no user: set_user takes the MULTI path, as every pass did before.
            with RedisAdmin(engine.url, username=engine.admin_username, password=engine.admin_password) as fresh:

                def before(
                    tenant: Tenant, admin: RedisAdmin = fresh, caps: ServerCapabilities = caps, k: int = k
                ) -> None:
                    admin.set_user(tenant.user, PASSWORD, caps)
                    assert usage_before(client, tenant.prefix, args.sample)[0] == k

                wall, spent = timed(engine, each(some, before))
                report(n, k, f"before (timed on {len(some)})", wall * n / len(some), wall, spent, len(some))

                def survey(tenant: Tenant, admin: RedisAdmin = fresh, k: int = k) -> None:
                    scope = SurveyScope(contract.shared_prefix(tenant.prefix), 0, encrypted=True)
                    assert admin.survey({tenant.prefix: scope})[tenant.prefix]["keys"] == k + 2

                wall, spent = timed(engine, each(some, survey))
                label = f"hourly survey, a walk per tenant (before; timed on {len(some)})"
                report(n, k, label, wall * n / len(some), wall, spent, len(some))

                def store_walk(admin: RedisAdmin = fresh, k: int = k, tenants: list[Tenant] = tenants) -> None:
                    scopes = {t.prefix: SurveyScope(contract.shared_prefix(t.prefix), 0, True) for t in tenants}
                    assert all(c["keys"] == k + 2 for c in admin.survey(scopes).values())

                wall, spent = timed(engine, store_walk)
                report(n, k, "hourly survey, one walk for the store (now)", wall, wall, spent, n)


def report(n: int, k: int, label: str, pass_s: float, wall: float, spent: dict[str, int], measured: int) -> None:
    per = sum(spent.values()) / measured
    top = ", ".join(f"{name} {calls / measured:g}" for name, calls in sorted(spent.items(), key=lambda x: -x[1])[:4])
    print(f"| {n:,} x {k:,} | {label} | {pass_s:.2f} s | {wall * 1000 / measured:.2f} | {per:g} | {top} |")


if __name__ == "__main__":
    main()
