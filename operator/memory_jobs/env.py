"""What a job reads from the jobs' credentials Secret (`<tenant>-memory-job-credentials`, its environment): the
jobs' own ACL user, the effective policy, where the operator's seal is and where results go; never the keyring.
Read by the contract's one reader (`memory_client.contract.read_env`), as the library reads an agent's Secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from memory_client import contract
from memory_client.contract import ContractError, Env

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
        try:
            read = contract.read_env(env)
        except ContractError as exc:
            raise JobEnvError(f"{exc} (run the job with the jobs' credentials Secret)") from None
        if read.results_prefix is None:
            raise JobEnvError(f"{Env.RESULTS_PREFIX} is not set: run the job with the jobs' credentials Secret")
        return cls(
            redis_url=read.redis_url,
            tenant_id=read.tenant_id,
            key_prefix=read.key_prefix,
            shared_prefix=read.shared_prefix,
            retention_days=read.retention_days,
            encryption_required=read.encryption_required,
            audit_key=read.audit_key,
            audit_retention_days=read.audit_retention_days,
            frameworks=read.frameworks,
            seal_key=read.seal_key,
            results_prefix=read.results_prefix,
        )

    def result_key(self, job: str) -> str:
        return f"{self.results_prefix}{job}"

    @property
    def sizes_key(self) -> str:
        """The library's index of every data key it wrote (data key -> bytes); see memory_client.contract."""
        return f"{self.shared_prefix}{contract.SIZES}"

    @property
    def usage_key(self) -> str:
        return f"{self.shared_prefix}{contract.USAGE}"
