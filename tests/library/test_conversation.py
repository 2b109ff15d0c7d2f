"""Conversation memory on a real server: append-only, ordered, windows by count and tokens, TTL, concurrency."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_client import AgentMemory, HeuristicTokenCounter, Message
from memory_sandbox.engine import Engine

from .conftest import Provisioner, Tenant


def test_append_then_last_returns_newest_in_order(tenant: Tenant) -> None:
    chat = tenant.memory("alpha").conversation("c", "u1")
    for i in range(5):
        chat.append("human", f"m{i}")
    assert [m.content for m in chat.last(3)] == ["m2", "m3", "m4"]
    assert chat.count() == 5


def _server_ms(client: Any) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_a_message_is_stamped_by_the_servers_clock_at_the_write_not_the_writers(
    tenant: Tenant, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timestamp is the one the server gives the entry when it is written: a writer whose clock runs 30 s ahead
    (within the skew readers allow) still stores the server's time, and reading it back gives that time again."""
    chat = tenant.memory("alpha").conversation("c", "u1")
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() + 30 * 10**9)
    with engine.admin_client() as admin:
        before = _server_ms(admin)
        first = chat.append("human", "hello")
        after = _server_ms(admin)
    assert first.timestamp is not None
    assert before <= round(first.timestamp.timestamp() * 1000) <= after
    assert [(m.id, m.timestamp) for m in chat.messages()] == [(first.id, first.timestamp)]


def test_metadata_and_role_round_trip(tenant: Tenant) -> None:
    chat = tenant.memory("alpha").conversation("c", "u1")
    chat.append("tool", "42", {"tool_call_id": "call-1"})
    stored = chat.last(1)[0]
    assert (stored.role, stored.content, stored.metadata, stored.agent) == (
        "tool",
        "42",
        {"tool_call_id": "call-1"},
        "alpha",
    )


def test_within_tokens_returns_the_newest_that_fit(tenant: Tenant) -> None:
    counter = HeuristicTokenCounter()
    chat = tenant.memory("alpha").conversation("c", "u1", counter=counter)
    chat.extend([("human", f"m{i:03d} " + "word " * 9) for i in range(200)])  # equal token counts
    per_message = counter.count("m000 " + "word " * 9) + 4
    window = chat.within_tokens(per_message * 70 + 1)
    assert len(window) == 70 and window[0].content.startswith("m130") and window[-1].content.startswith("m199")


def test_conversations_are_separate_per_agent_conversation_and_subject(tenant: Tenant) -> None:
    memory = tenant.memory(None)
    memory.conversation("c", "u1", agent="alpha").append("human", "a")
    memory.conversation("c", "u2", agent="alpha").append("human", "b")
    memory.conversation("c", "u1", agent="beta").append("human", "c")
    assert [m.content for m in memory.conversation("c", "u1", agent="alpha").messages()] == ["a"]


def test_subject_ids_never_appear_in_key_names(tenant: Tenant, engine: Engine) -> None:
    tenant.memory("alpha").conversation("c", "jane@example.com").append("human", "x")
    with engine.admin_client() as admin:
        names = [k.decode() for k in admin.scan_iter(match=f"{tenant.prefix}*")]
    assert names and not any("jane" in n for n in names)


@pytest.mark.parametrize("messages", [1, 3])
def test_retention_sets_a_ttl(provision: Provisioner, engine: Engine, messages: int) -> None:
    chat = provision.tenant(MEMORY_RETENTION_DAYS="7").memory("alpha").conversation("c", "u1")
    texts = [f"x{i}" for i in range(messages)]
    stored = chat.extend([("human", t) for t in texts]) if messages > 1 else [chat.append("human", texts[0])]
    assert [m.content for m in chat.messages()] == [m.content for m in stored] == texts
    with engine.admin_client() as admin:
        assert 6 * 86400 < admin.ttl(chat.key) <= 7 * 86400
        assert 6 * 86400 < admin.ttl(chat._index) <= 7 * 86400  # the subject's index too


def test_clear_removes_the_conversation(tenant: Tenant) -> None:
    chat = tenant.memory("alpha").conversation("c", "u1")
    chat.append("human", "x")
    assert chat.clear() == 1 and chat.messages() == []


def test_many_agents_in_threads_appending_lose_nothing_and_keep_each_writers_order(tenant: Tenant) -> None:
    writers, each = 8, 30

    def write(n: int) -> None:
        # Under moderate isolation both agents' users may write alpha's conversation.
        chat = tenant.memory("alpha" if n % 2 else "beta").conversation("shared", "u1", agent="alpha")
        for i in range(each):
            chat.append("ai", f"{n}:{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    memory = tenant.memory("alpha")
    stored = [m.content for m in memory.conversation("shared", "u1").messages()]
    assert len(stored) == writers * each
    for n in range(writers):
        assert [s for s in stored if s.startswith(f"{n}:")] == [f"{n}:{i}" for i in range(each)]
    assert memory.verify_audit().ok


def _append_from_process(env: dict[str, str], n: int, each: int) -> None:
    with AgentMemory.from_env(env) as memory:
        chat = memory.conversation("shared", "u1")
        for i in range(each):
            chat.append("ai", f"{n}:{i}")


def test_many_processes_appending_lose_nothing(tenant: Tenant) -> None:
    writers, each = 4, 25
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_from_process, args=(tenant.env("beta"), n, each)) for n in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    memory = tenant.memory("beta")
    stored = [m.content for m in memory.conversation("shared", "u1").messages()]
    assert sorted(stored) == sorted(f"{n}:{i}" for n in range(writers) for i in range(each))
    assert memory.verify_audit().ok


def test_a_forked_child_never_writes_on_its_parents_connection(tenant: Tenant) -> None:
    """The parent's last write left a connection watching the audit stream; a child forked then has a copy of
    that socket, and writing on it would interleave with the parent's traffic. The child opens its own."""
    memory = tenant.memory("alpha")
    chat = memory.conversation("forked", "u1")
    chat.append("human", "before the fork")  # leaves the primed connection
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=lambda: [chat.append("ai", f"child {i}") for i in range(5)])
    child.start()
    chat.append("human", "parent, while the child writes")
    child.join(60)
    assert child.exitcode == 0
    chat.append("human", "parent, after")
    stored = [m.content for m in chat.messages()]
    assert sorted(stored) == sorted(
        ["before the fork", "parent, while the child writes", "parent, after"] + [f"child {i}" for i in range(5)]
    )
    assert memory.verify_audit().ok


@given(st.text(), st.text(), st.one_of(st.none(), st.text()), st.dictionaries(st.text(), st.integers() | st.text()))
def test_the_stored_form_is_compact_json(role: str, content: str, agent: str | None, metadata: dict[str, Any]) -> None:
    doc: dict[str, Any] = {"r": role, "c": content}
    if agent:
        doc["a"] = agent
    if metadata:
        doc["m"] = metadata
    expected = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    assert Message.encode(role, content, agent, metadata) == expected
    assert Message.from_bytes(expected) == Message(role, content, agent or None, metadata)
