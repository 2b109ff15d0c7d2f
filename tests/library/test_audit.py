"""The audit trail: every operation appends an event; the hash chain exposes deletion, edits, reordering, trims."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_client import AgentMemory
from memory_client._resp import pack
from memory_client.audit import GENESIS, AuditEvent, canonical_json, chain_hash, verify_entries
from memory_sandbox.engine import Engine

from .conftest import Tenant


def _history(memory: AgentMemory, n: int = 5) -> None:
    chat = memory.conversation("c", "u1")
    for i in range(n):
        chat.append("human", f"m{i}")


def _rewrite(engine: Engine, key: str, mutate: object) -> None:
    """Replace the stream with `mutate(entries)`, keeping ids strictly increasing (what an admin could do)."""
    with engine.admin_client(decode_responses=True) as admin:
        entries = admin.xrange(key)
        admin.delete(key)
        for entry_id, fields in mutate(entries):  # type: ignore[operator]
            admin.xadd(key, fields, id=entry_id)


def test_every_operation_is_audited_with_counts_and_no_content(tenant: Tenant) -> None:
    memory = tenant.memory("alpha")
    chat = memory.conversation("c", "u1")
    chat.append("human", "secret plans")
    chat.last(10)
    chat.clear()
    actions = [e.fields["action"] for e in memory.audit_events()][::-1]
    assert actions == ["save", "read", "delete"]
    assert all("secret" not in repr(e.fields) for e in memory.audit_events())
    assert memory.audit_events(1)[0].fields["actor"] == "alpha"


def test_reads_are_not_audited_when_access_logging_is_off(tenant: Tenant) -> None:
    memory = tenant.memory("alpha", MEMORY_ACCESS_LOGGING="false")
    _history(memory, 1)
    memory.conversation("c", "u1").last(5)
    assert [e.fields["action"] for e in memory.audit_events()] == ["save"]


def test_an_untouched_chain_verifies(tenant: Tenant) -> None:
    memory = tenant.memory("alpha")
    _history(memory)
    result = memory.verify_audit()
    assert result.ok and result.checked == 5 and result.from_genesis


def test_a_deleted_entry_is_detected_at_the_entry_after_it(tenant: Tenant, engine: Engine) -> None:
    memory = tenant.memory("alpha")
    _history(memory)
    ids = [e.id for e in memory.audit_events()][::-1]
    with engine.admin_client() as admin:
        admin.xdel(tenant.audit_key, ids[2])
    result = memory.verify_audit()
    assert not result.ok and result.first_bad == ids[3] and "removed or reordered" in (result.reason or "")


def test_an_edited_entry_is_detected_at_that_entry(tenant: Tenant, engine: Engine) -> None:
    memory = tenant.memory("alpha")
    _history(memory)
    ids = [e.id for e in memory.audit_events()][::-1]

    def edit(entries: list[tuple[str, dict[str, str]]]) -> list[tuple[str, dict[str, str]]]:
        entries[1][1]["action"] = "read"
        return entries

    _rewrite(engine, tenant.audit_key, edit)
    result = memory.verify_audit()
    assert not result.ok and result.first_bad == ids[1] and "edited" in (result.reason or "")


def test_reordered_entries_are_detected(tenant: Tenant, engine: Engine) -> None:
    memory = tenant.memory("alpha")
    _history(memory)

    def swap(entries: list[tuple[str, dict[str, str]]]) -> list[tuple[str, dict[str, str]]]:
        (id1, f1), (id2, f2) = entries[1], entries[2]
        entries[1], entries[2] = (id1, f2), (id2, f1)
        return entries

    _rewrite(engine, tenant.audit_key, swap)
    assert not memory.verify_audit().ok


def test_a_trim_through_xadd_maxlen_by_the_tenant_is_detected(tenant: Tenant, engine: Engine) -> None:
    """ACLs cannot refuse XADD's MAXLEN option; the chain shows the oldest entries are gone."""
    memory = tenant.memory("alpha")
    _history(memory)
    memory.client.execute_command("XADD", tenant.audit_key, "MAXLEN", "2", "*", "action", "cover-up")
    result = memory.verify_audit()
    assert not result.ok and "entries before it were removed" in (result.reason or "")


def test_a_trail_trimmed_at_a_recorded_anchor_verifies_from_there(tenant: Tenant, engine: Engine) -> None:
    memory = tenant.memory("alpha")
    _history(memory)
    oldest = memory.audit_events(10)[-1]
    with engine.admin_client() as admin:
        admin.xdel(tenant.audit_key, oldest.id)
    result = memory.verify_audit(anchor=oldest.fields["h"])
    assert result.ok and not result.from_genesis and result.checked == 4


def test_concurrent_writers_from_two_agents_keep_one_valid_chain(tenant: Tenant) -> None:
    def work(agent: str) -> None:
        chat = tenant.memory(agent).conversation(f"c-{agent}", "u1")
        for i in range(20):
            chat.append("human", str(i))
            chat.last(1)

    threads = [threading.Thread(target=work, args=(a,)) for a in ("alpha", "beta", "alpha", "beta")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = tenant.memory(None).verify_audit()
    assert result.ok and result.checked == 160


def test_writers_with_stale_primed_heads_retry_and_keep_the_chain(tenant: Tenant) -> None:
    """Each client keeps a connection watching the audit head; the other's writes make that head stale."""
    one, two = tenant.memory("alpha"), tenant.memory("alpha")
    chats = [one.conversation("c", "u1"), two.conversation("c", "u1")]
    for i in range(20):
        chats[i % 2].append("human", str(i))
    assert [m.content for m in chats[0].messages()] == [str(i) for i in range(20)]
    assert one.verify_audit().ok


# ------------------------------------------------------------------------------------------------------------
# The verifier alone, on generated chains


def _chain(n: int) -> list[tuple[str, dict[str, str]]]:
    entries, prev = [], GENESIS
    for i in range(n):
        fields = AuditEvent("save", f"k{i}", i).fields("actor", 1000 + i)
        h = chain_hash(prev, fields)
        entries.append((f"{i + 1}-0", {**fields, "prev": prev, "h": h}))
        prev = h
    return entries


@given(st.integers(2, 30), st.data())
def test_removing_any_entry_is_detected(n: int, data: st.DataObject) -> None:
    entries = _chain(n)
    victim = data.draw(st.integers(0, n - 2))  # removing the newest leaves a valid, shorter chain
    del entries[victim]
    result = verify_entries(entries)
    assert not result.ok and result.first_bad == entries[victim][0]


@given(st.integers(1, 30), st.data(), st.text(min_size=1, max_size=5))
def test_editing_any_field_of_any_entry_is_detected(n: int, data: st.DataObject, junk: str) -> None:
    entries = _chain(n)
    index = data.draw(st.integers(0, n - 1))
    field = data.draw(st.sampled_from(["ts", "actor", "action", "target", "n"]))
    entries[index][1][field] += junk
    result = verify_entries(entries)
    assert not result.ok and result.first_bad == entries[index][0]


@given(st.integers(2, 30), st.data())
def test_swapping_any_two_entries_is_detected(n: int, data: st.DataObject) -> None:
    entries = _chain(n)
    i = data.draw(st.integers(0, n - 2))
    j = data.draw(st.integers(i + 1, n - 1))
    entries[i], entries[j] = entries[j], entries[i]
    assert not verify_entries(entries).ok


@pytest.mark.parametrize("n", [0, 1, 50])
def test_intact_generated_chains_verify(n: int) -> None:
    assert verify_entries(_chain(n)).ok


@given(st.dictionaries(st.text(), st.text()))
def test_the_canonical_form_is_json_dumps_with_sorted_keys(fields: dict[str, str]) -> None:
    assert canonical_json(fields) == json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@given(
    st.text(min_size=1),
    st.text(),
    st.integers(-5, 10**9),
    st.text(),
    st.dictionaries(st.sampled_from(["email", "phone", "ssn", "iban"]), st.integers(1, 9)),
    st.text(min_size=1),
    st.integers(0, 2**42),
)
def test_an_events_xadd_is_its_fields_linked_by_the_chain_hash(
    action: str, target: str, count: int, subject: str, masked: dict[str, int], actor: str, now: int
) -> None:
    event = AuditEvent(action, target, count, subject, masked)
    fields = event.fields(actor, now)
    prev = chain_hash(GENESIS, {"seed": action})
    digest = chain_hash(prev, fields)
    flat = [part for item in fields.items() for part in item]
    expected = pack([("XADD", "audit:t", "*", *flat, "prev", prev, "h", digest)])
    # Twice: the second is packed from the cached shape of the first.
    assert event.xadd("audit:t", actor, now, prev) == (expected, digest)
    assert event.xadd("audit:t", actor, now, prev) == (expected, digest)
