"""The retention job: enforce the effective maximum age of conversation content on the tenant's data.

Walks the library's index of data keys (HSCAN: tenant users may not SCAN) in batches and, per key: trims
stream entries older than the maximum exactly (`XTRIM MINID`; the library's own trim on append is approximate),
gives any key without a TTL one (a backstop: every memory key expires), and drops index entries of keys that
no longer exist. Idempotent, and resumable: the HSCAN cursor is saved after every batch, so a run cut short
continues where it stopped. Audit entries are not touched here: tenant users may not trim the audit stream; the
operator trims it, only past the audit minimum.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, cast

import redis

from memory_jobs.env import JobEnv

__all__ = ["RetentionResult", "run_retention"]

DAY_MS = 86_400_000
BATCH = 200


@dataclass
class RetentionResult:
    keys_checked: int = 0
    entries_removed: int = 0
    ttl_set: int = 0
    stale_index_entries: int = 0
    resumed: bool = False

    def fields(self) -> dict[str, str]:
        return {k: str(int(v)) for k, v in asdict(self).items()}


def run_retention(client: redis.Redis, env: JobEnv, now_ms: int | None = None) -> RetentionResult:
    """One pass over the tenant's data; raises redis errors (the caller records the failure)."""
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    state = env.result_key("retention")
    saved = client.hget(state, "cursor")
    cursor = int(saved) if saved and saved != b"0" else 0
    result = RetentionResult(resumed=cursor != 0)
    ttl_ms = None if env.retention_days is None else env.retention_days * DAY_MS
    while True:
        cursor, batch = client.hscan(env.sizes_key, cursor, count=BATCH)
        _enforce(client, env, cast(dict[Any, Any], batch), now_ms, ttl_ms, result)
        client.hset(state, "cursor", cursor)  # resume point if the run is cut short
        if cursor == 0:
            return result


def _enforce(
    client: redis.Redis,
    env: JobEnv,
    batch: dict[Any, Any],
    now_ms: int,
    ttl_ms: int | None,
    result: RetentionResult,
) -> None:
    keys = [k.decode() if isinstance(k, bytes) else str(k) for k in batch]
    if not keys:
        return
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.type(key)
            pipe.pttl(key)
        facts = pipe.execute()
    queued: list[str] = []  # what each queued command is, to read its reply
    with client.pipeline(transaction=False) as pipe:
        for i, key in enumerate(keys):
            kind, ttl = _text(facts[2 * i]), facts[2 * i + 1]
            result.keys_checked += 1
            if kind == "none":  # expired or deleted: its index entry and its bytes are stale
                result.stale_index_entries += 1
                pipe.hdel(env.sizes_key, key)
                pipe.hincrby(env.usage_key, "bytes", -int(batch.get(key.encode(), batch.get(key, 0))))
                queued += ["bookkeeping", "bookkeeping"]
                continue
            if ttl_ms is None:
                continue
            if kind == "stream":
                pipe.xtrim(key, minid=f"{now_ms - ttl_ms}-0", approximate=False)
                queued.append("trim")
            if ttl == -1:
                pipe.pexpire(key, ttl_ms)
                queued.append("ttl")
                result.ttl_set += 1
        replies = pipe.execute() if queued else []
    result.entries_removed += sum(int(r) for what, r in zip(queued, replies, strict=True) if what == "trim")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
