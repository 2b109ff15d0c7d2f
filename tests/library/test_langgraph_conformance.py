"""LangGraph's own checkpointer conformance suite (`langgraph-checkpoint-conformance`, unmodified) against
`TenantCheckpointer` on a real valkey-server, as an agent whose ACL user the operator's own code provisioned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import CapabilityReport

from memory_client.langgraph import TenantCheckpointer

from .conftest import Provisioner

# What the suite may report as unsupported, and why (README "LangGraph"): none today.
UNSUPPORTED: frozenset[str] = frozenset()


def _validate(provision: Provisioner, *, audit: bool, **policy: str) -> CapabilityReport:
    tenant = provision.tenant(**policy)

    @checkpointer_test(name=f"TenantCheckpointer(audit={audit})")
    async def factory() -> AsyncIterator[TenantCheckpointer]:
        yield TenantCheckpointer(tenant.memory("alpha", audit=audit))

    return asyncio.run(validate(factory))


@pytest.mark.parametrize("audit", [True, False], ids=["audited", "unaudited"])
def test_the_conformance_suite_passes(provision: Provisioner, audit: bool) -> None:
    report = _validate(provision, audit=audit)
    failures = {cap: r.failures for cap, r in report.results.items() if r.passed is False}
    assert not failures, failures
    assert report.passed_all_base()
    unsupported = {cap for cap, r in report.results.items() if not r.detected}
    assert unsupported == UNSUPPORTED


def test_the_conformance_suite_passes_under_a_retention_and_masking(provision: Provisioner) -> None:
    report = _validate(provision, audit=True, MEMORY_RETENTION_DAYS="7", MEMORY_MASKING="email,ssn")
    assert report.passed_all_base(), {cap: r.failures for cap, r in report.results.items() if r.passed is False}
