"""Quota: a write over the tenant's key or byte quota raises QuotaExceededError and writes nothing."""

from __future__ import annotations

import pytest

from memory_client import QuotaExceededError

from .conftest import Provisioner


def test_a_write_over_the_byte_quota_writes_nothing(provision: Provisioner) -> None:
    memory = provision.tenant(MEMORY_QUOTA_BYTES="400").memory("alpha")
    chat = memory.conversation("c", "u1")
    chat.append("human", "x" * 100)
    events = len(memory.audit_events())
    with pytest.raises(QuotaExceededError) as caught:
        chat.append("human", "x" * 400)
    assert (caught.value.resource, caught.value.limit) == ("bytes", 400)
    assert chat.count() == 1 and len(memory.audit_events()) == events


def test_a_new_key_over_the_key_quota_is_refused_but_existing_keys_grow(provision: Provisioner) -> None:
    memory = provision.tenant(MEMORY_QUOTA_KEYS="1").memory("alpha")
    memory.conversation("c1", "u1").append("human", "a")
    memory.conversation("c1", "u1").append("human", "b")  # same key: no new key
    with pytest.raises(QuotaExceededError, match="keys quota"):
        memory.conversation("c2", "u1").append("human", "c")
    assert memory.conversation("c2", "u1").count() == 0


def test_the_quota_error_carries_figures_not_content(provision: Provisioner) -> None:
    memory = provision.tenant(MEMORY_QUOTA_BYTES="50").memory("alpha")
    with pytest.raises(QuotaExceededError) as caught:
        memory.conversation("c", "u1").append("human", "confidential " * 10)
    assert "confidential" not in str(caught.value)


def test_the_key_quota_counts_what_the_operator_counts(provision: Provisioner) -> None:
    """`quota.keys: 2` lets two conversations through, and the operator's count of the prefix (status.usage.keys,
    what QuotaExceeded is judged by) is 2 as well: the library's bookkeeping keys count on neither side."""
    tenant = provision.tenant(MEMORY_QUOTA_KEYS="2")
    memory = tenant.memory("alpha")
    memory.conversation("c1", "u1").append("human", "a")
    memory.conversation("c2", "u2").append("human", "b")
    with pytest.raises(QuotaExceededError, match="keys quota"):
        memory.conversation("c3", "u1").append("human", "c")
    assert memory.usage().keys == 2
    assert provision.admin.usage(tenant.prefix).keys == 2
