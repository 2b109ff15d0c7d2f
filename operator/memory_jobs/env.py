"""What a job reads from the jobs' credentials Secret (`<tenant>-memory-job-credentials`, its environment): the
jobs' own ACL user, the effective policy, where the operator's seal is and where results go; never the keyring."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["JobEnv", "JobEnvError"]


class JobEnvError(ValueError):
    """A variable the job needs is missing or malformed; the message names it, never a value."""


@dataclass(frozen=True)
class JobEnv:
    redis_url: str = field(repr=False)  # carries the password
    tenant_id: str
    key_prefix: str
    shared_prefix: str
    retention_days: int | None
    encryption_required: bool
    audit_key: str = ""
    audit_retention_days: int | None = None
    frameworks: tuple[str, ...] = ()
    seal_key: str = ""  # the operator's seal of the audit trail (read-only for the jobs' user)
    results_prefix: str = ""  # where each job records its last run: only the jobs' user may write there

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JobEnv:
        env = os.environ if env is None else env
        for name in ("REDIS_URL", "MEMORY_TENANT_ID", "MEMORY_KEY_PREFIX", "MEMORY_RESULTS_PREFIX"):
            if not env.get(name):
                raise JobEnvError(f"{name} is not set: run the job with the jobs' credentials Secret (envFrom)")
        prefix = env["MEMORY_KEY_PREFIX"]
        namespace, _, name = env["MEMORY_TENANT_ID"].partition("/")
        return cls(
            redis_url=env["REDIS_URL"],
            tenant_id=env["MEMORY_TENANT_ID"],
            key_prefix=prefix,
            shared_prefix=env.get("MEMORY_SHARED_PREFIX") or f"{prefix}shared:",
            retention_days=_days(env, "MEMORY_RETENTION_DAYS"),
            encryption_required=env.get("MEMORY_ENCRYPTION", "required") == "required",
            audit_key=env.get("MEMORY_AUDIT_KEY") or f"audit:{namespace}:{name}",
            audit_retention_days=_days(env, "MEMORY_AUDIT_RETENTION_DAYS"),
            frameworks=tuple(f for f in env.get("MEMORY_FRAMEWORKS", "").split(",") if f),
            seal_key=env.get("MEMORY_SEAL_KEY") or f"seal:{namespace}:{name}",
            results_prefix=env["MEMORY_RESULTS_PREFIX"],
        )

    def result_key(self, job: str) -> str:
        return f"{self.results_prefix}{job}"

    @property
    def sizes_key(self) -> str:
        """The library's index of every data key it wrote (data key -> bytes); see memory_client's key schema."""
        return f"{self.shared_prefix}sizes"

    @property
    def usage_key(self) -> str:
        return f"{self.shared_prefix}usage"


def _days(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise JobEnvError(f"{name} must be a positive number of days")
    return int(raw)
