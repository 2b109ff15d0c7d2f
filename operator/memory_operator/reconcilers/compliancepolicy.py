"""CompliancePolicy reconcile: resolve the presets and overrides into requirements, count the bound tenants."""

from __future__ import annotations

from collections.abc import Sequence

from memory_operator.api.v1alpha1 import CompliancePolicy, CompliancePolicyStatus
from memory_operator.deps import Deps
from memory_operator.errors import InvalidSpec, PolicyInUse
from memory_operator.policy import PolicyContradiction, requirements_for
from memory_operator.reconcilers.common import Outcome, condition, with_conditions

__all__ = ["finalize", "reconcile"]


def reconcile(policy: CompliancePolicy, deps: Deps, bound: Sequence[str]) -> Outcome[CompliancePolicyStatus]:
    """Ready=True with the resolved requirements; a contradiction is InvalidSpec naming the field."""
    generation = policy.metadata.generation
    try:
        requirements = requirements_for(policy.spec)
    except PolicyContradiction as exc:
        raise InvalidSpec(str(exc)) from None
    status = policy.status.model_copy(update={"requirements": requirements, "bound_tenants": len(bound)})
    frameworks = ", ".join(policy.spec.frameworks) or "no framework"
    ready = condition(
        "Ready", "True", "Resolved", f"{frameworks}; bound to {len(bound)} tenant(s)", generation, deps.clock()
    )
    return Outcome(with_conditions(status, generation, ready))


def finalize(name: str, bound: Sequence[str]) -> None:
    """Let a policy go only once no MemoryTenant names it (they would lose their compliance settings)."""
    if bound:
        shown = ", ".join(list(bound)[:5]) + (f" and {len(bound) - 5} more" if len(bound) > 5 else "")
        raise PolicyInUse(f"CompliancePolicy {name} is still named by {len(bound)} MemoryTenant(s): {shown}")
