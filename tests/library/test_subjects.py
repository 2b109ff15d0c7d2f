"""Subject rights without SCAN: export everything about a user, decrypted; erase it down to zero keys."""

from __future__ import annotations

import hashlib

import pytest

from memory_client import ExtractiveSummarizer, MemoryPermissionError
from memory_sandbox.engine import Engine

from .conftest import Provisioner, Tenant, keyring_json

SUBJECT = "jane@example.com"


def _seed(tenant: Tenant) -> None:
    for agent in ("alpha", "beta"):
        memory = tenant.memory(agent)
        chat = memory.conversation("support", SUBJECT, summarizer=ExtractiveSummarizer())
        chat.extend([("human", f"{agent} invoice 1{i} is wrong") for i in range(6)])
        chat.trim_to_tokens(20)
        memory.conversation("support", "someone-else").append("human", "not jane")


def _keys(engine: Engine, tenant: Tenant) -> set[str]:
    with engine.admin_client() as admin:
        return {k.decode() for k in admin.scan_iter(match=f"{tenant.prefix}*")}


def test_export_holds_every_conversation_and_summary_of_the_subject_decrypted(tenant: Tenant) -> None:
    _seed(tenant)
    export = tenant.memory(None).export_subject(SUBJECT)
    assert sorted(c["agent"] for c in export["conversations"]) == ["alpha", "beta"]
    assert sorted(s["agent"] for s in export["summaries"]) == ["alpha", "beta"]
    texts = [m["content"] for c in export["conversations"] for m in c["messages"]]
    assert texts and all("invoice" in t for t in texts) and "not jane" not in texts


def test_erase_leaves_no_key_with_the_subjects_data(tenant: Tenant, engine: Engine) -> None:
    _seed(tenant)
    memory = tenant.memory(None)
    token = memory.pseudonym(SUBJECT)
    before = _keys(engine, tenant)
    assert any(token in k for k in before)
    receipt = memory.erase_subject(SUBJECT)
    assert (receipt.conversations, receipt.summaries, int(receipt)) == (2, 2, 4)
    after = _keys(engine, tenant)
    assert not any(token in k for k in after)
    assert after == {k for k in before if token not in k}
    assert memory.export_subject(SUBJECT)["conversations"] == []


def test_erase_and_export_are_audited_with_a_pseudonym_only(tenant: Tenant) -> None:
    _seed(tenant)
    memory = tenant.memory(None)
    memory.export_subject(SUBJECT)
    memory.erase_subject(SUBJECT)
    erase, export = memory.audit_events(2)
    assert (erase.fields["action"], export.fields["action"]) == ("erase", "export")
    assert erase.fields["subject"] == memory.pseudonym(SUBJECT)
    assert SUBJECT not in repr(erase.fields) + repr(export.fields)
    assert memory.verify_audit().ok


def test_erase_releases_the_subjects_quota_share(tenant: Tenant) -> None:
    _seed(tenant)
    memory = tenant.memory(None)
    before = memory.usage()
    memory.erase_subject(SUBJECT)
    after = memory.usage()
    assert after.keys == before.keys - 4 and 0 < after.bytes < before.bytes


def test_erasing_an_unknown_subject_deletes_nothing(tenant: Tenant) -> None:
    assert tenant.memory(None).erase_subject("nobody").deleted == 0


def test_a_strict_agent_cannot_erase_another_agents_data(provision: Provisioner) -> None:
    strict = provision.tenant("strict")
    _seed(strict)
    with pytest.raises(MemoryPermissionError):
        strict.memory("alpha").erase_subject(SUBJECT)
    assert len(strict.memory(None).export_subject(SUBJECT)["conversations"]) == 2


def test_a_keyring_without_a_pseudonym_key_keeps_the_unkeyed_pseudonym(provision: Provisioner) -> None:
    """Tenants minted before the pseudonym key keep reaching their data (the weaker, unkeyed token)."""
    tenant = provision.tenant()
    tenant.keyring = keyring_json(pseudonym=False)
    memory = tenant.memory("alpha")
    unkeyed = hashlib.sha256(f"{tenant.namespace}/{tenant.name}\x00{SUBJECT}".encode()).hexdigest()[:32]
    assert memory.pseudonym(SUBJECT) == unkeyed


def test_a_context_tagged_with_the_subject_is_exported_and_erased(tenant: Tenant) -> None:
    tenant.memory("alpha").shared_context("refund").create({"amount": 10}, subjects=[SUBJECT])
    memory = tenant.memory(None)
    assert memory.export_subject(SUBJECT)["contexts"] == [{"context": "refund", "version": 1, "data": {"amount": 10}}]
    assert memory.erase_subject(SUBJECT).contexts == 1 and memory.shared_context("refund").get() is None
