"""Domain errors the reconcilers raise; the handlers turn each into a Ready=False condition and a retry policy.

Every error carries a CamelCase `reason` (the condition reason users grep for) and a message that names the
offending field or endpoint, never a secret value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import ValidationError

__all__ = [
    "AmbiguousDefaultStore",
    "DeletionInProgress",
    "InvalidSpec",
    "KeyringUnreadable",
    "KubernetesApiError",
    "NameConflict",
    "PolicyConflict",
    "PolicyInUse",
    "PolicyNotFound",
    "ReconcileError",
    "ResidencyUnsatisfied",
    "SecretNotFound",
    "StoreInUse",
    "StoreNotFound",
    "StoreUnavailable",
    "UnexpectedError",
    "UnsupportedServer",
    "describe_validation_error",
]


class ReconcileError(Exception):
    """Base of the errors that end a reconcile with Ready=False."""

    reason: ClassVar[str] = "ReconcileFailed"
    #: None: permanent until the spec changes; a number: retry after that many seconds (grown by backoff).
    retry_after: ClassVar[float | None] = 30.0
    #: kstatus: True when no retry can succeed until someone changes an object (Stalled=True, not Reconciling).
    stalled: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSpec(ReconcileError):
    """The spec cannot be acted on; fixing it (a new generation) is the only way forward."""

    reason = "InvalidSpec"
    retry_after = None
    stalled = True


class StoreNotFound(ReconcileError):
    reason = "StoreNotFound"
    retry_after = 30.0


class ResidencyUnsatisfied(ReconcileError):
    reason = "ResidencyUnsatisfied"
    retry_after = 60.0


class StoreUnavailable(ReconcileError):
    """The store did not answer, refused the admin credentials, or runs an unsupported server."""

    reason = "StoreUnavailable"
    retry_after = 5.0


class StoreBusy(ReconcileError):
    """As many reconciles as a store may have at once are already talking to it: this one is put off, writing
    nothing (no condition, no Event), so that one slow store cannot hold every worker of the operator."""

    reason = "StoreBusy"
    retry_after = 1.0


class UnsupportedServer(StoreUnavailable):
    """The store answers but runs a server tenants cannot be placed on (Redis < 7, Valkey < 8, no ACLs)."""

    reason = "UnsupportedServer"
    retry_after = 300.0
    stalled = True


class StoreInUse(ReconcileError):
    """A MemoryStore being deleted still hosts tenants: it is kept until they are gone (like PVC protection)."""

    reason = "StoreInUse"
    retry_after = 30.0


class PolicyNotFound(ReconcileError):
    reason = "PolicyNotFound"
    retry_after = 30.0


class PolicyConflict(ReconcileError):
    """The bound policies (with the tenant's own retention) demand things that cannot all hold."""

    reason = "PolicyConflict"
    retry_after = 60.0
    stalled = True


class PolicyInUse(ReconcileError):
    """A CompliancePolicy being deleted is still named by tenants: kept until they no longer refer to it."""

    reason = "PolicyInUse"
    retry_after = 30.0


class SecretNotFound(ReconcileError):
    reason = "SecretNotFound"
    retry_after = 30.0


class NameConflict(ReconcileError):
    """A child object the operator would write already exists and belongs to someone else."""

    reason = "NameConflict"
    retry_after = 60.0
    stalled = True


class AmbiguousDefaultStore(ReconcileError):
    """More than one MemoryStore is annotated default: placement would be a guess, so none is made."""

    reason = "AmbiguousDefaultStore"
    retry_after = 60.0
    stalled = True


class KeyringUnreadable(ReconcileError):
    """The keys Secret exists but cannot be parsed: never overwrite it (that would lose the data's keys)."""

    reason = "KeyringUnreadable"
    retry_after = 300.0
    stalled = True


class KubernetesApiError(ReconcileError):
    """The API server refused or failed a call (the Kubernetes client's KubeError, as the handlers see it)."""

    reason = "KubernetesApiError"
    retry_after = 10.0


class UnexpectedError(ReconcileError):
    """A bug or an unforeseen fault; its text stays in the operator log (it could carry data)."""

    reason = "UnexpectedError"
    retry_after = 30.0


class DeletionInProgress(ReconcileError):
    """The object's deletion began while a reconcile was running: the reconcile stops and writes nothing more."""

    reason = "Deleting"
    retry_after = None


def describe_validation_error(error: ValidationError, root: str = "") -> str:
    """One line per problem, each naming its field as a JSON path: `spec.agents[1]: ...`."""
    return "; ".join(f"{_field_path(e['loc'], root)}: {e['msg'].removeprefix('Value error, ')}" for e in error.errors())


def _field_path(loc: Iterable[Any], root: str) -> str:
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith(("function-", "union[", "int", "str")) or not path:
            path += f".{part}" if path else str(part)
    return path or "(root)"
