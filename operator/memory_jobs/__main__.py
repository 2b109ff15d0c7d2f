"""`memory-jobs retention|report`: the programs a tenant's CronJobs run. Exit 0 on success, 1 on failure (with a
message naming what failed, never a secret), 2 on bad usage or environment.

Output is one JSON object per line (for log collectors): failures on stderr (`{"job", "status": "failed",
"error"}`), the result on stdout as the last line (the record the operator reads from the store, with the
report as an object and without its Markdown rendering). The operator never reads this output."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import redis

from memory_client.contract import JOB_REPORT, JOB_RETENTION
from memory_jobs.env import JobEnv, JobEnvError
from memory_jobs.report import run_report
from memory_jobs.retention import run_retention

__all__ = ["main"]


def _retention(client: redis.Redis, env: JobEnv) -> dict[str, str]:
    return run_retention(client, env).fields()


JOBS: dict[str, Callable[[redis.Redis, JobEnv], dict[str, str]]] = {JOB_RETENTION: _retention, JOB_REPORT: run_report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memory-jobs", description=__doc__)
    parser.add_argument("job", choices=sorted(JOBS))
    args = parser.parse_args(argv)
    try:
        env = JobEnv.from_env()
    except JobEnvError as exc:
        _emit(args.job, sys.stderr, status="failed", error=str(exc))
        return 2
    started = time.monotonic()
    record: dict[str, str] = {"startedAt": _now(), "status": "running"}
    client = redis.Redis.from_url(env.redis_url, socket_timeout=30, socket_connect_timeout=10)
    try:
        client.hset(env.result_key(args.job), mapping=cast(Any, record))
        record |= JOBS[args.job](client, env)
        record |= {"status": "succeeded", "error": ""}
        code = 0
    except redis.RedisError as exc:
        # redis-py messages name commands and keys, never the password in the URL
        record |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        _emit(args.job, sys.stderr, status="failed", error=record["error"])
        code = 1
    except Exception as exc:  # any other failure is recorded as failed too, never left "running"
        # only the type: a message may quote data written by a tenant user (e.g. the value that failed to parse)
        record |= {"status": "failed", "error": f"{type(exc).__name__} (unexpected; see the job's log)"}
        _emit(args.job, sys.stderr, status="failed", error=f"{type(exc).__name__}: {exc}")  # the job's own log
        code = 1
    record |= {"finishedAt": _now(), "durationMs": str(int((time.monotonic() - started) * 1000))}
    try:
        client.hset(env.result_key(args.job), mapping=cast(Any, record))
    except redis.RedisError as exc:
        _emit(args.job, sys.stderr, status="failed", error=f"could not record the result: {type(exc).__name__}")
        code = 1
    finally:
        client.close()
    result: dict[str, Any] = {k: v for k, v in record.items() if k not in ("error", "markdown")}
    if "report" in result:
        result["report"] = json.loads(result["report"])
    _emit(args.job, sys.stdout, **result)
    return code


def _emit(job: str, stream: Any, **fields: Any) -> None:
    """One JSON object on one line."""
    print(json.dumps({"job": job, **fields}, separators=(",", ":")), file=stream, flush=True)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    sys.exit(main())
