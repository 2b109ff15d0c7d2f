"""The tenants' periodic passes are spread over the interval by a stable hash of each tenant's uid."""

from __future__ import annotations

import uuid

import kopf

from memory_operator.handlers.memorytenant import first_pass_delay
from memory_operator.handlers.sync import RESYNC_SECONDS


def delay(uid: str) -> float:
    return first_pass_delay(body=kopf.Body({"metadata": {"uid": uid}}))


def test_a_tenants_first_pass_comes_after_one_interval_and_within_two() -> None:
    for i in range(100):
        assert RESYNC_SECONDS <= delay(str(uuid.UUID(int=i))) < 2 * RESYNC_SECONDS


def test_the_same_tenant_always_gets_the_same_phase() -> None:
    uid = "0b8f3c52-5d0e-4a4e-9a55-8f1c2b7d9e10"
    assert delay(uid) == delay(uid)  # hashlib, not hash(): the same across processes and restarts


def test_a_thousand_tenants_fill_every_tenth_of_the_interval() -> None:
    tenths = [int((delay(str(uuid.uuid4())) / RESYNC_SECONDS - 1.0) * 10) for _ in range(1000)]
    assert sorted(set(tenths)) == list(range(10))
    assert max(tenths.count(t) for t in range(10)) < 200  # about 100 each; nowhere near all at once
