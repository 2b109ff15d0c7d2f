"""What a job reads from the tenant credentials Secret (its environment); never the keyring."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["RESULT_KEY", "JobEnv", "JobEnvError"]

#: hash under the tenant's shared area where each job records its last run (the operator reads it)
RESULT_KEY = "jobs:{job}"


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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JobEnv:
        env = os.environ if env is None else env
        for name in ("REDIS_URL", "MEMORY_TENANT_ID", "MEMORY_KEY_PREFIX"):
            if not env.get(name):
                raise JobEnvError(f"{name} is not set: run the job with the tenant's credentials Secret (envFrom)")
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
        )

    def result_key(self, job: str) -> str:
        return self.shared_prefix + RESULT_KEY.format(job=job)

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
