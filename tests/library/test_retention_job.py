"""The retention job on a real valkey-server, as an ACL user allowed only the commands the job needs: exact trims
past the maximum, TTL backstops, stale index entries dropped with their bytes, the same counts whatever the batch
boundaries, idempotent, and resumable from the cursor it saves (never past a batch it did not finish)."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis

from memory_client import ConfigError
from memory_jobs.env import JobEnv
from memory_jobs.retention import BATCH, RetentionResult, run_retention
from memory_sandbox.engine import Engine

DAY_MS = 86_400_000
NOW_MS = 1_800_000_000_000
JOB_COMMANDS = ("hscan", "type", "pttl", "xtrim", "pexpire", "hdel", "hincrby", "hget", "hset")
_ids = itertools.count()


@dataclass
class Job:
    """One tenant's data (written as admin) and the retention job's client (an ACL user of the job's commands)."""

    admin: redis.Redis
    client: redis.Redis
    env: JobEnv

    def key(self, name: str) -> str:
        return f"{self.env.key_prefix}{name}"

    def index(self, key: str, size: int = 10) -> None:
        self.admin.hset(self.env.sizes_key, key, size)

    def stream(self, key: str, *days_ago: float, ttl: bool = True) -> None:
        for n, ago in enumerate(days_ago):
            self.admin.xadd(key, {"m": f"e{n}"}, id=f"{NOW_MS - int(ago * DAY_MS)}-{n}")
        if ttl:
            self.admin.pexpire(key, 30 * DAY_MS)
        self.index(key)

    def run(self) -> RetentionResult:
        return run_retention(self.client, self.env, now_ms=NOW_MS)

    def saved_cursor(self) -> bytes | None:
        return self.admin.hget(self.env.result_key("retention"), "cursor")  # type: ignore[return-value]

    def pages(self) -> list[tuple[bytes | None, list[bytes]]]:
        """The index as the job's HSCAN walk pages it (same COUNT): each page's keys and the cursor it starts at
        as the job saves it (None for the first: nothing saved yet)."""
        out: list[tuple[bytes | None, list[bytes]]] = []
        at: int | None = None
        while at != 0:
            start = None if at is None else str(at).encode()
            at, page = self.admin.hscan(self.env.sizes_key, at or 0, count=BATCH)
            out.append((start, list(page)))
        return out

    def bare(self) -> set[bytes]:
        return {k for k in self.admin.hkeys(self.env.sizes_key) if self.admin.pttl(k) == -1}


def job_env(engine: Engine, namespace: str, username: str, password: str, **policy: str) -> JobEnv:
    return JobEnv.from_env(
        {
            "REDIS_URL": f"redis://{username}:{password}@{engine.host}:{engine.port}/0",
            "MEMORY_TENANT_ID": f"{namespace}/bot",
            "MEMORY_KEY_PREFIX": f"mem:{namespace}:bot:",
            "MEMORY_RESULTS_PREFIX": f"jobs:{namespace}:bot:",  # as the jobs' credentials Secret gives it
            "MEMORY_RETENTION_DAYS": "30",
            **policy,
        }
    )


MakeJob = Callable[..., Job]  # make_job(commands=JOB_COMMANDS, **policy) -> Job


@pytest.fixture
def make_job(engine: Engine) -> Iterator[MakeJob]:
    admin = engine.admin_client()
    made: list[tuple[str, JobEnv, redis.Redis]] = []

    def make(commands: tuple[str, ...] = JOB_COMMANDS, **policy: str) -> Job:
        namespace, password = f"ret{next(_ids)}", secrets.token_urlsafe(16)
        username = f"mt_{namespace}_bot__jobs"
        env = job_env(engine, namespace, username, password, **policy)
        admin.execute_command(
            "ACL", "SETUSER", username, "reset", "on", f">{password}", f"~{env.key_prefix}*",
            f"~{env.result_key('retention')}", "-@all", *(f"+{c}" for c in commands), "+client|setinfo",
        )  # fmt: skip
        client = redis.Redis.from_url(env.redis_url)
        made.append((username, env, client))
        return Job(admin, client, env)

    yield make
    for username, env, client in made:
        client.close()
        admin.execute_command("ACL", "DELUSER", username)
        for key in admin.scan_iter(f"{env.key_prefix}*", count=1000):
            admin.delete(key)
        admin.delete(env.result_key("retention"))
    admin.close()


def test_stream_entries_older_than_the_maximum_are_trimmed_exactly(make_job: MakeJob) -> None:
    job = make_job()
    conv = job.key("agent:a:conv:c1:s1")
    # 150 old entries span two stream nodes: an approximate trim (the library's on append) would keep some
    job.stream(conv, *[40 - i / 100 for i in range(150)], 30.0001, 29.9999, 1)

    result = job.run()

    assert [f[b"m"] for _, f in job.admin.xrange(conv)] == [b"e151", b"e152"]
    assert result.entries_removed == 151


def test_a_key_without_a_ttl_gets_the_maximum_and_a_key_with_one_keeps_it(make_job: MakeJob) -> None:
    job = make_job()
    bare, kept = job.key("shared:ctx:notes"), job.key("shared:ctx:other")
    job.admin.hset(bare, "v", "x")
    job.admin.hset(kept, "v", "x")
    job.admin.pexpire(kept, 5_000_000)
    job.index(bare)
    job.index(kept)

    result = job.run()

    assert 30 * DAY_MS - 60_000 < job.admin.pttl(bare) <= 30 * DAY_MS
    assert 4_000_000 < job.admin.pttl(kept) <= 5_000_000
    assert result.ttl_set == 1


def test_index_entries_of_keys_that_are_gone_are_dropped_with_their_bytes(make_job: MakeJob) -> None:
    job = make_job()
    live, gone = job.key("agent:a:conv:c1:s1"), job.key("agent:a:conv:gone:s2")
    job.stream(live, 1)
    job.index(gone, size=7)
    job.admin.hset(job.env.usage_key, "bytes", 17)

    result = job.run()

    assert job.admin.hkeys(job.env.sizes_key) == [live.encode()]
    assert job.admin.hget(job.env.usage_key, "bytes") == b"10"
    assert result.stale_index_entries == 1


def test_without_a_maximum_nothing_is_trimmed_or_expired_but_stale_entries_go(make_job: MakeJob) -> None:
    job = make_job(MEMORY_RETENTION_DAYS="")
    conv, gone = job.key("agent:a:conv:c1:s1"), job.key("agent:a:conv:gone:s2")
    job.stream(conv, 400, 1, ttl=False)
    job.index(gone)

    result = job.run()

    assert job.admin.xlen(conv) == 2 and job.admin.pttl(conv) == -1
    assert not job.admin.hexists(job.env.sizes_key, gone)
    assert result == RetentionResult(keys_checked=2, stale_index_entries=1)


def layout(job: Job, keys: int) -> RetentionResult:
    """`keys` index entries over several batches: streams (every other with 2 entries past the maximum),
    hashes, entries of keys that are gone, 1 in 7 live keys without a TTL; and what one pass must count."""
    expected = RetentionResult(keys_checked=keys)
    with job.admin.pipeline(transaction=False) as pipe:
        for i in range(keys):
            key = job.key(f"agent:a:conv:c{i}:s" if i % 10 else f"agent:a:conv:gone{i}:s")
            pipe.hset(job.env.sizes_key, key, 10)
            if i % 10 == 0:
                expected.stale_index_entries += 1
                continue
            if i % 10 < 3:
                pipe.hset(key, "v", "x")
            else:
                for n, ago in enumerate((40, 35, 2, 1) if i % 2 == 0 else (4, 3, 2, 1)):
                    pipe.xadd(key, {"m": "x"}, id=f"{NOW_MS - ago * DAY_MS}-{n}")
                expected.entries_removed += 2 if i % 2 == 0 else 0
            if i % 7:
                pipe.pexpire(key, 30 * DAY_MS)
            else:
                expected.ttl_set += 1
        pipe.hset(job.env.usage_key, "bytes", 10 * keys)
        pipe.execute()
    return expected


def test_a_pass_over_many_batches_counts_every_key_once(make_job: MakeJob) -> None:
    job = make_job()
    expected = layout(job, 2 * BATCH + 500)

    assert job.run() == expected
    assert job.admin.hlen(job.env.sizes_key) == expected.keys_checked - expected.stale_index_entries
    assert job.admin.hget(job.env.usage_key, "bytes") == str(10 * job.admin.hlen(job.env.sizes_key)).encode()
    assert job.saved_cursor() == b"0"  # finished: the next run starts from the beginning


def test_a_second_pass_changes_nothing(make_job: MakeJob) -> None:
    job = make_job()
    expected = layout(job, BATCH + 200)
    job.run()

    again = job.run()

    live = expected.keys_checked - expected.stale_index_entries
    assert again == RetentionResult(keys_checked=live)


def hashes(job: Job, keys: int) -> None:
    """`keys` context hashes in the index, each with a TTL: a pass over them writes nothing but its cursor."""
    with job.admin.pipeline(transaction=False) as pipe:
        for i in range(keys):
            key = job.key(f"shared:ctx:n{i}")
            pipe.hset(key, "v", "x")
            pipe.pexpire(key, 30 * DAY_MS)
            pipe.hset(job.env.sizes_key, key, 10)
        pipe.execute()


def test_a_run_resumes_from_the_saved_cursor(make_job: MakeJob) -> None:
    job = make_job()
    hashes(job, 3 * BATCH)
    pages = job.pages()
    skipped, rest = pages[0][1], [key for _, keys in pages[1:] for key in keys]
    job.admin.persist(skipped[0])
    job.admin.persist(rest[-1])
    job.admin.hset(job.env.result_key("retention"), "cursor", pages[1][0] or b"")

    result = job.run()

    assert result.resumed and result.keys_checked == len(rest) and result.ttl_set == 1
    assert job.bare() == {skipped[0]}  # before the saved cursor: not walked again
    assert job.saved_cursor() == b"0"
    assert not job.run().resumed


def test_a_run_cut_short_keeps_the_cursor_of_its_last_finished_batch(make_job: MakeJob) -> None:
    job = make_job()
    hashes(job, 4 * BATCH)
    garbled = job.key("agent:a:conv:garbled:s").encode()
    job.admin.hset(job.env.sizes_key, garbled, "not-a-number")  # a tenant user writes its own index
    pages = job.pages()
    failing = next(i for i, (_, keys) in enumerate(pages) if garbled in keys)

    with pytest.raises(ValueError):
        job.run()

    assert job.saved_cursor() == pages[failing][0]  # the batch that failed will be walked again
    job.admin.hset(job.env.sizes_key, garbled, 10)
    resumed = job.run()
    assert resumed.resumed == (failing > 0)
    assert resumed.keys_checked == sum(len(keys) for _, keys in pages[failing:])
    assert resumed.stale_index_entries == 1 and not job.admin.hexists(job.env.sizes_key, garbled)
    assert job.saved_cursor() == b"0"


def test_a_refused_write_leaves_the_cursor_before_its_batch(make_job: MakeJob) -> None:
    job = make_job(commands=tuple(c for c in JOB_COMMANDS if c != "pexpire"))
    hashes(job, 4 * BATCH)
    pages = job.pages()
    job.admin.persist(pages[2][1][0])  # the third batch needs a PEXPIRE, which this user may not send

    with pytest.raises(redis.exceptions.NoPermissionError):
        job.run()

    assert job.saved_cursor() == pages[2][0]


def test_a_resp3_connection_is_refused_clearly(make_job: MakeJob) -> None:
    job = make_job()
    resp3 = redis.Redis.from_url(job.env.redis_url, protocol=3)
    with pytest.raises(ConfigError, match="protocol=3"):
        run_retention(resp3, job.env, now_ms=NOW_MS)
    resp3.close()
