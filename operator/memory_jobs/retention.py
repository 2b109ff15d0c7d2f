"""The retention job: enforce the effective maximum age of conversation content on the tenant's data.

Walks the library's index of data keys (HSCAN: tenant users may not SCAN) in batches and, per key: trims
stream entries older than the maximum exactly (`XTRIM MINID`; the library's own trim on append is approximate),
gives any key without a TTL one (a backstop: every memory key expires), and drops index entries of keys that
no longer exist. Idempotent, and resumable: the HSCAN cursor is saved after every batch's writes, so a run cut
short continues where it stopped. Audit entries are not touched here: tenant users may not trim the audit
stream; the operator trims it, only past the audit minimum.

One round trip per batch: the writes for batch N and its cursor go out with TYPE + PTTL for batch N+1 and the
HSCAN for batch N+2, packed with hiredis (redis-py's per-command cost was most of the run; see BENCHMARKS.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import redis
from redis.exceptions import ResponseError

from memory_client.contract import DAY_MS, JOB_RETENTION
from memory_client.wire import HOLE, Template, check_client, connection, exchange, pack
from memory_jobs.env import JobEnv

__all__ = ["RetentionResult", "run_retention"]

BATCH = 1000  # HSCAN COUNT: keys per round trip


@dataclass
class RetentionResult:
    keys_checked: int = 0
    entries_removed: int = 0
    ttl_set: int = 0
    stale_index_entries: int = 0
    resumed: bool = False

    def fields(self) -> dict[str, str]:
        return {k: str(int(v)) for k, v in asdict(self).items()}


@dataclass
class _Batch:
    """One HSCAN page: the cursor after it, its keys and the bytes the index records for each."""

    cursor: bytes
    keys: Sequence[bytes]
    sizes: Sequence[bytes]
    facts: Sequence[Any] = field(default=())  # TYPE and PTTL of each key, in turn, once read


class _Commands:
    """The pass's commands, packed once with holes for the key (see memory_client.wire.Template)."""

    def __init__(self, env: JobEnv, state: str, now_ms: int) -> None:
        self.env, self.state = env, state
        ttl_ms = None if env.retention_days is None else env.retention_days * DAY_MS
        self.enforcing = ttl_ms is not None
        self.facts: Final = Template([("TYPE", HOLE), ("PTTL", HOLE)])
        self.trim: Final = Template([("XTRIM", HOLE, "MINID", f"{now_ms - (ttl_ms or 0)}-0")])
        self.expire: Final = Template([("PEXPIRE", HOLE, ttl_ms or 0)])
        self.forget: Final = Template([("HDEL", env.sizes_key, HOLE), ("HINCRBY", env.usage_key, "bytes", HOLE)])

    def scan(self, cursor: bytes) -> bytes:
        return pack([("HSCAN", self.env.sizes_key, cursor, "COUNT", BATCH)])

    def save(self, cursor: bytes) -> bytes:
        return pack([("HSET", self.state, "cursor", cursor)])

    def enforce(self, batch: _Batch, result: RetentionResult) -> tuple[list[bytes], list[bool]]:
        """The writes batch's facts call for, then its cursor saved; and, per reply, whether it counts trims."""
        out: list[bytes] = []
        trims: list[bool] = []
        facts = batch.facts
        for i, key in enumerate(batch.keys):
            kind, ttl = facts[2 * i], facts[2 * i + 1]
            if kind == b"none":  # expired or deleted: its index entry and its bytes are stale
                result.stale_index_entries += 1
                out.append(self.forget.fill(key, b"%d" % -int(batch.sizes[i])))
                trims += (False, False)
                continue
            if not self.enforcing:
                continue
            if kind == b"stream":
                out.append(self.trim.fill(key))
                trims.append(True)
            if ttl == -1:
                out.append(self.expire.fill(key))
                trims.append(False)
                result.ttl_set += 1
        result.keys_checked += len(batch.keys)
        out.append(self.save(batch.cursor))  # after the writes, on the same connection: saved means done
        trims.append(False)
        return out, trims


def run_retention(client: redis.Redis, env: JobEnv, now_ms: int | None = None) -> RetentionResult:
    """One pass over the tenant's data; raises redis errors (the caller records the failure)."""
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    check_client(client, "the retention job's client")  # RESP2 replies only: ConfigError naming protocol=3
    state = env.result_key(JOB_RETENTION)
    saved = client.hget(state, "cursor")
    start = b"%d" % (int(saved) if saved and saved != b"0" else 0)
    result = RetentionResult(resumed=start != b"0")
    commands = _Commands(env, state, now_ms)
    with connection(client) as conn:
        scanned: _Batch | None = _page(_checked(exchange(conn, [commands.scan(start)], 1))[0])
        checked: _Batch | None = None  # facts read, writes not sent yet
        resume_from = start  # the cursor saved last
        while scanned is not None or checked is not None:
            writes, trims = commands.enforce(checked, result) if checked is not None else ([], [])
            reads, facts, more = [], 0, False
            if scanned is not None:
                reads = [commands.facts.fill(key, key) for key in scanned.keys]
                facts, more = 2 * len(scanned.keys), scanned.cursor != b"0"
                if more:
                    reads.append(commands.scan(scanned.cursor))
            replies = exchange(conn, writes + reads, len(trims) + facts + more)
            done = replies[: len(trims)]
            if checked is not None and _first_error(done) is not None:
                # the cursor after the failed batch went out with its writes: put back the one before it
                exchange(conn, [commands.save(resume_from)], 1)
            _checked(replies)
            result.entries_removed += sum(int(r) for r, trim in zip(done, trims, strict=True) if trim)
            if checked is not None:
                resume_from = checked.cursor
            if scanned is not None:
                scanned.facts = replies[len(trims) : len(trims) + facts]
            checked, scanned = scanned, _page(replies[-1]) if more else None
    return result


def _page(reply: Any) -> _Batch:
    """An HSCAN reply, `[cursor, [field, value, ...]]`, as a batch."""
    cursor, flat = reply
    return _Batch(cursor, flat[::2], flat[1::2])


def _first_error(replies: Sequence[Any]) -> ResponseError | None:
    return next((r for r in replies if isinstance(r, ResponseError)), None)


def _checked(replies: list[Any]) -> list[Any]:
    error = _first_error(replies)
    if error is not None:
        raise error
    return replies
