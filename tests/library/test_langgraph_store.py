"""`TenantStore`, LangGraph's BaseStore in the tenant's namespace: behaviour, then attacks with the admin connection.

Every test talks to a real valkey-server as a tenant's agent whose ACL user the operator's own code provisioned.
"""

from __future__ import annotations

import asyncio
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypedDict

import pytest
import redis
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import GetOp, Item, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from memory_client import AgentMemory, ConfigError, DecryptionError, MemoryPermissionError, QuotaExceededError
from memory_client.contract import is_sealed
from memory_client.langgraph.store import InvalidFilterError, SearchNotSupportedError, TenantStore, subject_at
from memory_jobs.retention import run_retention
from memory_operator.clients.redis_admin import RedisAdmin, SurveyScope
from memory_sandbox.engine import Engine, calls_between

from .conftest import Provisioner, Tenant

JANE = "user-jane-4711"  # namespace labels may not hold periods (LangGraph), so no e-mail addresses
BOB = "user-bob-0815"


def _store(tenant: Tenant, agent: str | None = "alpha", **options: Any) -> TenantStore:
    audit = options.pop("audit", True)
    env = options.pop("env", {})
    return TenantStore(tenant.memory(agent, audit=audit, **env), **options)


def _dump(engine: Engine, tenant: Tenant) -> dict[str, Any]:
    """Every key under the tenant's prefix with its value as the admin sees it (what lies at rest)."""
    out: dict[str, Any] = {}
    with engine.admin_client() as admin:
        for key in admin.scan_iter(match=f"{tenant.prefix}*"):
            kind = admin.type(key).decode()
            name = key.decode()
            if kind == "string":
                out[name] = admin.get(key)
            elif kind == "hash":
                out[name] = admin.hgetall(key)
            elif kind == "set":
                out[name] = admin.smembers(key)
            elif kind == "stream":
                out[name] = admin.xrange(key)
            else:
                out[name] = kind
    return out


def _store_keys(engine: Engine, store: TenantStore) -> set[str]:
    with engine.admin_client() as admin:
        return {k.decode() for k in admin.scan_iter(match=f"{store.prefix}*")}


# -- behaviour -------------------------------------------------------------------------------------------------


def test_put_then_get_returns_the_item_with_its_times(tenant: Tenant) -> None:
    store = _store(tenant)
    store.put(("users", "u1", "prefs"), "color", {"value": "blue", "n": 3})
    item = store.get(("users", "u1", "prefs"), "color")
    assert item is not None
    assert (item.namespace, item.key, item.value) == (("users", "u1", "prefs"), "color", {"value": "blue", "n": 3})
    assert item.created_at == item.updated_at
    time.sleep(0.01)
    store.put(("users", "u1", "prefs"), "color", {"value": "green"})
    again = store.get(("users", "u1", "prefs"), "color")
    assert again is not None and again.value == {"value": "green"}
    assert again.created_at == item.created_at and again.updated_at > item.updated_at


def test_get_of_a_missing_item_or_namespace_is_none(tenant: Tenant) -> None:
    store = _store(tenant)
    store.put(("a",), "k", {"x": 1})
    assert store.get(("a",), "other") is None
    assert store.get(("b",), "k") is None


def test_delete_removes_the_item_its_index_entries_and_its_quota_share(tenant: Tenant, engine: Engine) -> None:
    store = _store(tenant)
    before = store.memory.usage()
    store.put(("docs",), "d1", {"text": "one"})
    store.put(("docs",), "d2", {"text": "two"})
    store.delete(("docs",), "d1")
    assert store.get(("docs",), "d1") is None
    assert [i.key for i in store.search(("docs",))] == ["d2"]
    store.delete(("docs",), "d2")
    assert store.list_namespaces() == [] and store.search(()) == []
    assert _store_keys(engine, store) == {store.root}  # only the index's format marker is left
    after = store.memory.usage()
    assert after.keys == before.keys + 1  # the index root
    with engine.admin_client() as admin:
        assert set(admin.hkeys(store.root)) == {b"d"}


def test_put_with_value_none_in_a_batch_deletes(tenant: Tenant) -> None:
    store = _store(tenant)
    store.batch([PutOp(("n",), "a", {"v": 1}), PutOp(("n",), "b", {"v": 2})])
    store.batch([PutOp(("n",), "a", None)])
    assert store.get(("n",), "a") is None and store.get(("n",), "b") is not None


def test_the_last_put_of_an_item_in_a_batch_wins(tenant: Tenant) -> None:
    store = _store(tenant)
    store.batch([PutOp(("n",), "a", {"v": 1}), PutOp(("n",), "a", {"v": 2}), PutOp(("n",), "b", {"v": 3})])
    results = store.batch([GetOp(("n",), "a"), GetOp(("n",), "b"), GetOp(("n",), "c")])
    assert [r.value if isinstance(r, Item) else r for r in results] == [{"v": 2}, {"v": 3}, None]


def test_search_filters_by_equality_and_comparison_operators(tenant: Tenant) -> None:
    store = _store(tenant)
    for i, (status, score) in enumerate([("active", 1), ("active", 5), ("archived", 7), ("active", 9)]):
        store.put(("items",), f"i{i}", {"status": status, "score": score, "meta": {"lang": "en" if i % 2 else "de"}})

    def keys(**spec: Any) -> list[str]:
        return sorted(i.key for i in store.search(("items",), filter=spec))

    assert keys(status="active") == ["i0", "i1", "i3"]
    assert keys(score={"$gt": 5}) == ["i2", "i3"]
    assert keys(score={"$gte": 5}) == ["i1", "i2", "i3"]
    assert keys(score={"$lt": 5}) == ["i0"]
    assert keys(score={"$lte": 5}) == ["i0", "i1"]
    assert keys(status={"$ne": "active"}) == ["i2"]
    assert keys(status={"$eq": "archived"}) == ["i2"]
    assert keys(status="active", score={"$gt": 1, "$lt": 9}) == ["i1"]
    assert keys(meta={"lang": "en"}) == ["i1", "i3"]
    assert keys(missing={"$gt": 0}) == []


def test_search_pages_newest_first_with_limit_and_offset(tenant: Tenant) -> None:
    store = _store(tenant)
    for i in range(5):
        store.put(("log",), f"e{i}", {"i": i})
        time.sleep(0.003)
    assert [i.key for i in store.search(("log",), limit=2)] == ["e4", "e3"]
    assert [i.key for i in store.search(("log",), limit=2, offset=2)] == ["e2", "e1"]
    assert [i.key for i in store.search(("log",), limit=10, offset=4)] == ["e0"]
    assert store.search(("log",), offset=5) == []


def test_search_covers_the_namespaces_under_its_prefix_only(tenant: Tenant) -> None:
    store = _store(tenant)
    store.put(("users", "u1"), "a", {"x": 1})
    store.put(("users", "u1", "deep"), "b", {"x": 2})
    store.put(("users", "u2"), "c", {"x": 3})
    store.put(("other",), "d", {"x": 4})
    found = store.search(("users", "u1"))
    assert sorted((i.namespace, i.key) for i in found) == [(("users", "u1"), "a"), (("users", "u1", "deep"), "b")]
    assert len(store.search(())) == 4
    assert all(i.score is None for i in found)


def test_vector_search_and_unknown_operators_are_typed_errors(tenant: Tenant) -> None:
    store = _store(tenant)
    with pytest.raises(SearchNotSupportedError, match="vector"):
        store.search(("a",), query="what does the user like?")
    with pytest.raises(InvalidFilterError, match=r"\$regex"):
        store.search(("a",), filter={"name": {"$regex": "x"}})


def test_list_namespaces_by_prefix_suffix_wildcards_depth_and_page(tenant: Tenant) -> None:
    store = _store(tenant)
    for ns in [("a", "b", "c"), ("a", "b", "d"), ("a", "x", "c"), ("z", "b", "c"), ("a",)]:
        store.put(ns, "k", {"v": 1})
    assert store.list_namespaces(prefix=("a",)) == [("a",), ("a", "b", "c"), ("a", "b", "d"), ("a", "x", "c")]
    assert store.list_namespaces(suffix=("c",)) == [("a", "b", "c"), ("a", "x", "c"), ("z", "b", "c")]
    assert store.list_namespaces(prefix=("a", "*", "c")) == [("a", "b", "c"), ("a", "x", "c")]
    assert store.list_namespaces(prefix=("a",), suffix=("*", "d")) == [("a", "b", "d")]
    assert store.list_namespaces(max_depth=2) == [("a",), ("a", "b"), ("a", "x"), ("z", "b")]
    assert store.list_namespaces(limit=2, offset=1) == [("a", "b", "c"), ("a", "b", "d")]


def test_an_item_expires_after_its_ttl_and_leaves_reads_working(tenant: Tenant, engine: Engine) -> None:
    store = _store(tenant)
    store.put(("t",), "short", {"v": 1}, ttl=0.002)  # 120 ms
    store.put(("t",), "long", {"v": 2})
    store.put(("gone",), "only", {"v": 3}, ttl=0.002)
    time.sleep(0.3)
    assert store.get(("t",), "short") is None
    assert [i.key for i in store.search(("t",))] == ["long"]
    assert store.list_namespaces() == [("t",)]  # a namespace whose items all expired is not listed
    # The listing dropped the expired entries, and the namespace left without items, with their bytes.
    assert _store_keys(engine, store) == {
        store.root,
        store._space(("t",)).key,
        store._item_key(store._item_token(("t",), "long")),
    }
    with engine.admin_client() as admin:
        assert [f for f in admin.hkeys(store._space(("t",)).key) if f.startswith(b"i:")] == [
            f"i:{store._item_token(('t',), 'long')}".encode()
        ]
    assert "store.prune" in [e.fields["action"] for e in store.memory.audit_events(4)]


def test_a_ttl_is_capped_by_the_retention(provision: Provisioner, engine: Engine) -> None:
    tenant = provision.tenant(MEMORY_RETENTION_DAYS="1")
    store = _store(tenant)
    store.put(("t",), "k", {"v": 1}, ttl=3 * 24 * 60)  # three days asked, one allowed
    store.put(("t",), "plain", {"v": 2})  # no TTL asked: the retention's
    with engine.admin_client() as admin:
        for key in _store_keys(engine, store):
            assert 0 < admin.pttl(key) <= 86_400_000, key


def test_reads_refresh_an_items_ttl_unless_told_not_to(tenant: Tenant, engine: Engine) -> None:
    store = _store(tenant)
    store.put(("t",), "k", {"v": 1}, ttl=1)
    key = store._item_key(store._item_token(("t",), "k"))
    with engine.admin_client() as admin:
        admin.pexpire(key, 5_000)  # as if most of its minute had passed
        store.get(("t",), "k", refresh_ttl=False)
        assert admin.pttl(key) <= 5_000
        store.get(("t",), "k")
        assert admin.pttl(key) > 50_000
        admin.pexpire(key, 5_000)
        store.search(("t",))
        assert admin.pttl(key) > 50_000


def test_abatch_runs_the_same_operations(tenant: Tenant) -> None:
    store = _store(tenant)

    async def run() -> list[Any]:
        await store.aput(("async",), "k", {"v": 1})
        return [
            await store.aget(("async",), "k"),
            await store.asearch(("async",), filter={"v": 1}),
            await store.alist_namespaces(),
            await store.abatch([GetOp(("async",), "k"), SearchOp(("async",))]),
        ]

    got, found, spaces, batched = asyncio.run(run())
    assert got is not None and got.value == {"v": 1}
    assert [i.key for i in found] == ["k"] and spaces == [("async",)]
    assert batched[0] == got and [i.key for i in batched[1]] == ["k"]


def test_string_values_are_masked_per_the_policy(provision: Provisioner) -> None:
    store = _store(provision.tenant(MEMORY_MASKING="email"))
    store.put(("u",), "contact", {"note": "write to jane@example.com", "nested": [{"mail": "bob@example.com"}]})
    item = store.get(("u",), "contact")
    assert item is not None and "@example.com" not in repr(item.value)
    put = next(e for e in store.memory.audit_events() if e.fields["action"] == "store.put")
    assert put.fields["masked"] == '{"email":2}'


def test_the_shared_area_is_reachable_by_every_agent(tenant: Tenant) -> None:
    _store(tenant, "alpha", shared=True).put(("team",), "plan", {"step": 1})
    item = _store(tenant, "beta", shared=True).get(("team",), "plan")
    assert item is not None and item.value == {"step": 1}
    assert _store(tenant, "beta").get(("team",), "plan") is None  # beta's own area is another place


def test_a_langgraph_graph_writes_and_reads_memories_through_the_store(tenant: Tenant) -> None:
    class State(TypedDict):
        user: str
        question: str
        answer: str

    model = FakeListChatModel(responses=["Noted: you like green.", "You like green."])

    def remember(state: State, runtime: Runtime[None]) -> dict[str, str]:
        assert runtime.store is not None
        namespace = ("memories", state["user"])
        known = [i.value["fact"] for i in runtime.store.search(namespace)]
        if state["question"].startswith("remember "):
            runtime.store.put(namespace, f"fact-{len(known)}", {"fact": state["question"][len("remember ") :]})
        prompt = f"facts: {known}; question: {state['question']}"
        return {"answer": str(model.invoke(prompt).content)}

    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", END)

    store = _store(tenant, subject=subject_at(1))
    builder.compile(store=store).invoke({"user": JANE, "question": "remember green", "answer": ""})
    # Another process, another store object: the memory is in Valkey, not in the graph.
    graph = builder.compile(store=_store(tenant, subject=subject_at(1)))
    out = graph.invoke({"user": JANE, "question": "what do I like?", "answer": ""})
    assert out["answer"] == "You like green."
    assert [i.value for i in store.search(("memories", JANE))] == [{"fact": "green"}]


# -- attacks and evidence (the admin connection) -------------------------------------------------------------


def test_nothing_is_stored_in_plain_text(tenant: Tenant, engine: Engine) -> None:
    store = _store(tenant, subject=subject_at(1))
    store.put(("memories", JANE, "secret-project"), "codename", {"text": "Operation Bluebird"})
    at_rest = repr(_dump(engine, tenant))
    for plain in ("Bluebird", "codename", "secret-project", "memories", JANE):
        assert plain not in at_rest
    with engine.admin_client() as admin:
        for key in _store_keys(engine, store):
            value = admin.get(key) if admin.type(key) == b"string" else admin.hget(key, "d")
            assert value is not None and is_sealed(value), key


def test_the_operators_survey_finds_every_key_sealed_indexed_and_with_a_ttl(
    provision: Provisioner, engine: Engine, session_admin: RedisAdmin
) -> None:
    tenant = provision.tenant(MEMORY_RETENTION_DAYS="30")
    store = _store(tenant, subject=subject_at(0))
    store.put((JANE, "a"), "k1", {"v": 1})
    store.put((JANE, "b"), "k2", {"v": 2}, ttl=10)
    store.put(("team",), "k3", {"v": 3})
    shared = f"{tenant.prefix}shared:"
    found = session_admin.survey({tenant.prefix: SurveyScope(shared, cutoff_ms=0, encrypted=True)})[tenant.prefix]
    # Without a TTL: only the library's bookkeeping hashes (usage, sizes), as beside conversations.
    assert found["plaintext_values"] == 0 and found["keys_without_ttl"] == 2
    assert found["data_keys"] == store.memory.usage().keys == len(_store_keys(engine, store))


def test_a_value_copied_under_another_items_key_fails_to_open(tenant: Tenant, engine: Engine) -> None:
    store = _store(tenant)
    store.put(("acct",), "alice", {"balance": "balance-of-alice"})
    store.put(("acct",), "mallory", {"balance": 0})
    alice = store._item_key(store._item_token(("acct",), "alice"))
    mallory = store._item_key(store._item_token(("acct",), "mallory"))
    with engine.admin_client() as admin:
        admin.set(mallory, admin.get(alice))
    with pytest.raises(DecryptionError) as caught:
        store.get(("acct",), "mallory")
    assert caught.value.reason == "authentication" and "alice" not in str(caught.value)
    with pytest.raises(DecryptionError):
        store.search(("acct",))
    assert store.memory.audit_events(1)[0].fields["action"] == "read.rejected"


def test_a_value_moved_to_another_namespace_fails_to_open(tenant: Tenant, engine: Engine) -> None:
    """Same item key in two namespaces: the envelope is sealed for its namespace too."""
    store = _store(tenant)
    store.put(("a",), "k", {"v": "a"})
    store.put(("b",), "k", {"v": "b"})
    with engine.admin_client() as admin:
        admin.set(
            store._item_key(store._item_token(("b",), "k")), admin.get(store._item_key(store._item_token(("a",), "k")))
        )
    with pytest.raises(DecryptionError):
        store.get(("b",), "k")


def test_a_write_over_the_quota_writes_nothing(provision: Provisioner, engine: Engine) -> None:
    tenant = provision.tenant(MEMORY_QUOTA_BYTES="1500")
    store = _store(tenant)
    store.put(("q",), "small", {"text": "x" * 50})
    before, events = _dump(engine, tenant), len(store.memory.audit_events())
    with pytest.raises(QuotaExceededError) as caught:
        store.batch([PutOp(("q",), "big", {"text": "y" * 2000}), PutOp(("q",), "fine", {"text": "z"})])
    assert caught.value.resource == "bytes" and "yyy" not in str(caught.value)
    assert _dump(engine, tenant) == before and len(store.memory.audit_events()) == events
    assert store.get(("q",), "fine") is None


def test_a_new_namespace_over_the_key_quota_is_refused(provision: Provisioner, engine: Engine) -> None:
    tenant = provision.tenant(MEMORY_QUOTA_KEYS="3")  # the root, one namespace, one item
    store = _store(tenant)
    store.put(("q",), "a", {"v": 1})
    store.put(("q",), "a", {"v": 2})  # an existing item: no new key
    before = _dump(engine, tenant)
    with pytest.raises(QuotaExceededError, match="keys quota"):
        store.put(("q",), "b", {"v": 3})
    assert _dump(engine, tenant) == before


def test_writes_and_reads_are_in_the_audit_trail_with_pseudonyms_only(tenant: Tenant) -> None:
    store = _store(tenant, subject=subject_at(1))
    store.put(("memories", JANE), "k", {"v": 1})
    store.get(("memories", JANE), "k")
    store.search(("memories",))
    store.list_namespaces()
    store.delete(("memories", JANE), "k")
    events = list(reversed(store.memory.audit_events(5)))
    assert [e.fields["action"] for e in events] == ["store.put", "read", "read", "read", "store.delete"]
    pseudonym = store.memory.pseudonym(JANE)
    assert [e.fields.get("subject") for e in events[:3]] == [pseudonym] * 3
    assert JANE not in repr([e.fields for e in events]) and "memories" not in repr([e.fields for e in events])
    assert store.memory.verify_audit().ok


def test_audit_off_writes_no_events(tenant: Tenant) -> None:
    store = _store(tenant, audit=False)
    store.put(("x",), "k", {"v": 1})
    assert store.get(("x",), "k") is not None
    assert tenant.memory("alpha").audit_events() == []


def test_erasing_a_subject_leaves_no_key_holding_its_data(tenant: Tenant, engine: Engine) -> None:
    store = _store(tenant, subject=subject_at(1))
    for who in (JANE, BOB):
        store.put(("memories", who), "food", {"likes": f"{who} likes pizza"})
        store.put(("memories", who, "work"), "role", {"title": "engineer"})
    before = _store_keys(engine, store)
    bob_keys = {store._space(ns).key for ns in [("memories", BOB), ("memories", BOB, "work")]}
    bob_keys |= {
        store._item_key(store._item_token(ns, k))
        for ns, k in [(("memories", BOB), "food"), (("memories", BOB, "work"), "role")]
    }
    receipt = tenant.memory(None).erase_subject(JANE)
    assert len(receipt.keys) == 4  # two items, two namespace hashes
    assert store.list_namespaces() == [("memories", BOB), ("memories", BOB, "work")]
    after = _store_keys(engine, store)
    assert after == bob_keys | {store.root} and before - after == set(receipt.keys)
    with engine.admin_client() as admin:
        # The index root holds no trace of Jane's namespaces once listed (their pseudonyms are pruned).
        assert {f.decode() for f in admin.hkeys(store.root)} == {"d"} | {
            store._space(("memories", BOB)).token,
            store._space(("memories", BOB, "work")).token,
        }
    assert store.export_subject(JANE) == [] and store.search(("memories", JANE)) == []
    assert tenant.memory(None).usage().keys == len(after)


def test_the_store_exports_a_subjects_items(tenant: Tenant) -> None:
    store = _store(tenant, subject=subject_at(1))
    store.put(("memories", JANE), "food", {"likes": "pizza"})
    store.put(("memories", BOB), "food", {"likes": "pasta"})
    exported = store.export_subject(JANE)
    assert [(e["namespace"], e["key"], e["value"]) for e in exported] == [
        (["memories", JANE], "food", {"likes": "pizza"})
    ]


def test_agent_memory_exports_the_subjects_items_of_every_area(tenant: Tenant) -> None:
    """`AgentMemory.export_subject` (the tenant credentials) finds store items through the subject's index, in
    any agent's area, and exports them as the store itself does."""
    alpha, beta = _store(tenant, "alpha", subject=subject_at(1)), _store(tenant, "beta", subject=subject_at(1))
    alpha.put(("memories", JANE), "food", {"likes": "pizza"})
    beta.put(("memories", JANE), "drink", {"likes": "tea"})
    beta.put(("memories", BOB), "food", {"likes": "pasta"})
    exported = tenant.memory(None).export_subject(JANE)
    assert sorted(exported["storeItems"], key=lambda e: e["key"]) == sorted(
        alpha.export_subject(JANE) + beta.export_subject(JANE), key=lambda e: e["key"]
    )
    assert {e["key"] for e in exported["storeItems"]} == {"food", "drink"} and exported["rejected"] == []


def test_a_strict_agent_cannot_read_or_write_another_agents_items(provision: Provisioner) -> None:
    tenant = provision.tenant("strict")
    _store(tenant, "alpha").put(("private",), "k", {"v": "alpha's"})
    beta = tenant.memory("beta")
    intruder = TenantStore(beta, agent="alpha")
    with pytest.raises(MemoryPermissionError):
        intruder.get(("private",), "k")
    with pytest.raises(MemoryPermissionError):
        intruder.put(("private",), "k", {"v": "beta's"})
    with pytest.raises(MemoryPermissionError):
        intruder.list_namespaces()
    assert TenantStore(beta).search(()) == []
    item = _store(tenant, "alpha").get(("private",), "k")
    assert item is not None and item.value == {"v": "alpha's"}


def test_another_tenants_agent_cannot_reach_the_items(provision: Provisioner) -> None:
    ours, theirs = provision.tenant(), provision.tenant()
    store = _store(ours)
    store.put(("x",), "k", {"v": 1})
    other: AgentMemory = theirs.memory("alpha")
    forged = TenantStore(other)
    forged.prefix, forged.root = store.prefix, store.root  # aim at our keys with their credentials
    with pytest.raises(MemoryPermissionError):
        forged.list_namespaces()
    with pytest.raises((MemoryPermissionError, redis.RedisError)):
        forged.get(("x",), "k")


def test_tenant_credentials_must_name_an_agent(tenant: Tenant) -> None:
    with pytest.raises(ConfigError, match="agent="):
        TenantStore(tenant.memory(None))
    assert TenantStore(tenant.memory(None), agent="alpha").prefix.endswith("agent:alpha:lg:")


def test_deleting_what_does_not_exist_writes_nothing(tenant: Tenant, engine: Engine) -> None:
    store = _store(tenant)
    store.put(("n",), "a", {"v": 1})
    before, events = _dump(engine, tenant), len(store.memory.audit_events())
    store.delete(("n",), "missing")
    store.delete(("elsewhere",), "missing")
    assert _dump(engine, tenant) == before and len(store.memory.audit_events()) == events


def test_concurrent_writers_of_one_namespace_lose_nothing(tenant: Tenant) -> None:
    stores = [_store(tenant) for _ in range(4)]

    def write(n: int) -> None:
        for i in range(15):
            stores[n].put(("busy",), f"w{n}-{i}", {"n": n, "i": i})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(4)))
    found = stores[0].search(("busy",), limit=100)
    assert len(found) == 60
    usage = stores[0].memory.usage()
    assert usage.keys == 62  # 60 items, the namespace, the index root
    assert stores[0].memory.verify_audit().ok


def test_the_retention_job_keeps_the_store_consistent(provision: Provisioner, engine: Engine) -> None:
    """The job walks the sizes index: it forgets expired items (and their bytes) and the store still reads."""
    tenant = provision.tenant(MEMORY_RETENTION_DAYS="7")
    store = _store(tenant)
    store.put(("r",), "brief", {"v": 1}, ttl=0.002)
    store.put(("r",), "kept", {"v": 2})
    time.sleep(0.3)
    env = tenant.job_env(engine.url)
    with engine.admin_client() as admin:
        result = run_retention(admin, env)
        admin.delete(env.result_key("retention"))
    assert result.stale_index_entries == 1 and result.ttl_set == 0
    assert [i.key for i in store.search(("r",))] == ["kept"]
    assert store.memory.usage().keys == 3
    store.put(("r",), "brief", {"v": 3})
    item = store.get(("r",), "brief")
    assert item is not None and item.value == {"v": 3}


def test_a_put_costs_the_same_commands_whatever_the_namespace_holds(tenant: Tenant, engine: Engine) -> None:
    store = _store(tenant)

    def put_cost(key: str) -> dict[str, int]:
        before = engine.command_calls()
        store.put(("big",), key, {"v": key})
        return calls_between(before, engine.command_calls())

    store.put(("big",), "first", {"v": 0})
    small = put_cost("a")
    store.batch([PutOp(("big",), f"k{i}", {"v": i}) for i in range(300)])
    assert put_cost("b") == small and "hgetall" not in small


def test_a_namespace_name_copied_to_another_namespace_fails_to_open(tenant: Tenant, engine: Engine) -> None:
    store = _store(tenant)
    store.put(("public",), "k", {"v": 1})
    store.put(("private",), "k", {"v": 2})
    with engine.admin_client() as admin:
        admin.hset(store._space(("private",)).key, "d", admin.hget(store._space(("public",)).key, "d"))
    with pytest.raises(DecryptionError):
        store.list_namespaces()
    with pytest.raises(DecryptionError):
        store.search(())
    assert store.memory.audit_events(1)[0].fields["action"] == "read.rejected"


def test_the_same_operations_give_what_langgraphs_in_memory_store_gives(tenant: Tenant) -> None:
    """A differential check against LangGraph's own InMemoryStore (there is no store conformance suite upstream):
    a seeded run of puts, deletes, gets, filtered searches and namespace listings; searches compared as sets, since
    the InMemoryStore returns insertion order and this store newest first."""
    ours, theirs = _store(tenant), InMemoryStore()
    rng = random.Random(15)
    spaces = [("a",), ("a", "b"), ("a", "b", "c"), ("x", "b"), ("x", "y", "c")]
    for _ in range(150):
        ns, key = rng.choice(spaces), f"k{rng.randrange(6)}"
        if rng.random() < 0.2:
            for store in (ours, theirs):
                store.delete(ns, key)
        else:
            value = {"n": rng.randrange(10), "tag": rng.choice(["red", "blue"]), "deep": {"x": rng.randrange(2)}}
            for store in (ours, theirs):
                store.put(ns, key, value)
    filters: list[dict[str, Any] | None] = [
        None,
        {"tag": "red"},
        {"n": {"$gt": 4}},
        {"n": {"$gte": 2, "$lt": 7}, "tag": {"$ne": "red"}},
        {"deep": {"x": 1}},
        {"n": {"$lte": 3}, "deep": {"x": 0}},
    ]
    for prefix in [(), ("a",), ("a", "b"), ("x",), ("nothing",)]:
        for spec in filters:
            got = {(i.namespace, i.key, repr(i.value)) for i in ours.search(prefix, filter=spec, limit=1000)}
            want = {(i.namespace, i.key, repr(i.value)) for i in theirs.search(prefix, filter=spec, limit=1000)}
            assert got == want, (prefix, spec)
    for ns in spaces:
        for key in (f"k{i}" for i in range(6)):
            mine, other = ours.get(ns, key), theirs.get(ns, key)
            assert (mine and mine.value) == (other and other.value)
    listings: list[dict[str, Any]] = [
        {},
        {"prefix": ("a",)},
        {"suffix": ("c",)},
        {"prefix": ("*", "b")},
        {"max_depth": 1},
        {"max_depth": 2, "limit": 2, "offset": 1},
    ]
    for options in listings:
        assert ours.list_namespaces(**options) == theirs.list_namespaces(**options), options


def test_an_async_graph_uses_the_store_through_abatch(tenant: Tenant) -> None:
    class State(TypedDict):
        user: str
        seen: int

    async def count_visits(state: State, runtime: Runtime[None]) -> dict[str, int]:
        assert runtime.store is not None
        namespace = ("visits", state["user"])
        before = await runtime.store.aget(namespace, "count")
        seen = (before.value["n"] if before else 0) + 1
        await runtime.store.aput(namespace, "count", {"n": seen})
        return {"seen": seen}

    builder = StateGraph(State)
    builder.add_node("count_visits", count_visits)
    builder.add_edge(START, "count_visits")
    builder.add_edge("count_visits", END)
    graph = builder.compile(store=_store(tenant, subject=subject_at(1)))

    async def visit_three_times() -> list[int]:
        return [(await graph.ainvoke({"user": JANE, "seen": 0}))["seen"] for _ in range(3)]

    assert asyncio.run(visit_three_times()) == [1, 2, 3]
