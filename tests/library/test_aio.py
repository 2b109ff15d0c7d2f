"""The asyncio facade on a real server: same data as the sync API, safe under gather, never blocks the loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Iterator

import pytest

from memory_client import ConflictError, ExtractiveSummarizer, MemoryPermissionError, Message, TrimResult
from memory_client.aio import AsyncAgentMemory
from memory_sandbox.engine import Engine

from .conftest import Provisioner, Tenant


def test_append_and_last_through_the_async_api_equal_the_sync_view(tenant: Tenant) -> None:
    sync = tenant.memory("alpha")
    memory = AsyncAgentMemory(sync)
    chat = memory.conversation("c", "u1")

    async def run() -> tuple[list[Message], list[Message], int]:
        stored = [await chat.append("human", f"m{i}", {"i": i}) for i in range(5)]
        return stored, await chat.last(3), await chat.count()

    stored, last, count = asyncio.run(run())
    assert all(m.id for m in stored) and count == 5
    assert last == stored[2:] == sync.conversation("c", "u1").last(3)
    assert [m.metadata for m in last] == [{"i": 2}, {"i": 3}, {"i": 4}]
    assert (chat.agent, chat.conversation, chat.subject, chat.key) == ("alpha", "c", "u1", chat.sync.key)
    assert memory.sync is sync and memory.config.agent_id == "alpha"


def test_writers_gathered_on_one_client_lose_nothing_and_keep_each_writers_order(tenant: Tenant) -> None:
    writers, each = 8, 25  # 200 appends, 8 writers in flight at any time, each awaiting its own in order
    memory = AsyncAgentMemory(tenant.memory("alpha"))

    async def write(n: int) -> list[Message]:
        chat = memory.conversation("shared", "u1")  # a handle per writer, all on one client
        return [await chat.append("ai", f"{n}:{i}") for i in range(each)]

    async def run() -> list[list[Message]]:
        return await asyncio.gather(*(write(n) for n in range(writers)))

    written = asyncio.run(run())
    stored = tenant.memory("beta").conversation("shared", "u1", agent="alpha").messages()
    contents = [m.content for m in stored]
    assert len(stored) == writers * each
    for n in range(writers):
        assert [c for c in contents if c.startswith(f"{n}:")] == [f"{n}:{i}" for i in range(each)]
    assert {m.id for ms in written for m in ms} == {m.id for m in stored}  # the ids returned are the ids stored
    assert memory.sync.verify_audit().ok


def test_two_hundred_appends_in_flight_at_once_all_land_and_the_audit_chain_verifies(tenant: Tenant) -> None:
    memory = AsyncAgentMemory(tenant.memory("alpha"))
    handles = [memory.conversation("shared", "u1") for _ in range(4)]

    async def run() -> list[Message]:
        return await asyncio.gather(*(handles[i % 4].append("ai", f"m{i}") for i in range(200)))

    written = asyncio.run(run())
    assert [m.content for m in written] == [f"m{i}" for i in range(200)]  # gather keeps the call order
    stored = memory.sync.conversation("shared", "u1").messages()
    assert sorted(m.content for m in stored) == sorted(f"m{i}" for i in range(200))
    assert {m.id for m in written} == {m.id for m in stored}
    verification = memory.sync.verify_audit()
    assert verification.ok
    saves = [e for e in memory.sync.audit_events(1000) if e.fields.get("action") == "save"]
    assert len(saves) == 200


def _ticks_during(operation: Awaitable[object]) -> tuple[int, float]:
    """Ticks of a 1 ms ticker while `operation` (a coroutine) is awaited, and how long it took."""

    async def run() -> tuple[int, float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)  # the ticker is running
        before, started = ticks, time.monotonic()
        await operation
        elapsed, during = time.monotonic() - started, ticks - before
        task.cancel()
        return during, elapsed

    return asyncio.run(run())


def test_a_large_extend_does_not_block_the_event_loop(tenant: Tenant) -> None:
    memory = AsyncAgentMemory(tenant.memory("alpha"))
    chat = memory.conversation("c", "u1")
    ticks, elapsed = _ticks_during(chat.extend([("human", f"message {i} " + "word " * 50) for i in range(5000)]))
    assert chat.sync.count() == 5000
    # Run on the loop, the extend would allow no tick at all until it returned.
    assert ticks >= 10, (ticks, elapsed)


def test_many_appends_do_not_block_the_event_loop(tenant: Tenant) -> None:
    memory = AsyncAgentMemory(tenant.memory("alpha"))
    chat = memory.conversation("c", "u1")

    async def appends() -> None:
        for i in range(300):
            await chat.append("human", f"m{i}")

    ticks, elapsed = _ticks_during(appends())
    assert chat.sync.count() == 300
    assert ticks >= 10, (ticks, elapsed)


def test_a_stale_shared_context_update_raises_the_same_conflict_error(tenant: Tenant) -> None:
    alpha = AsyncAgentMemory(tenant.memory("alpha")).shared_context("plan")
    beta = AsyncAgentMemory(tenant.memory("beta")).shared_context("plan")

    async def run() -> None:
        await alpha.create({"step": 0})
        await beta.update({"step": 1}, expected_version=1)
        await alpha.update({"step": 99}, expected_version=1)

    with pytest.raises(ConflictError) as caught:
        asyncio.run(run())
    assert type(caught.value) is ConflictError and caught.value.current_version == 2
    state = asyncio.run(alpha.get())
    assert state is not None and (state.version, state.data) == (2, {"step": 1})
    assert [(e.actor, e.version) for e in asyncio.run(alpha.access_log())] == [("beta", 2), ("alpha", 1)]


def test_another_tenants_prefix_raises_the_same_permission_error(provision: Provisioner) -> None:
    mine, theirs = provision.tenant(), provision.tenant()
    env = mine.env("alpha", MEMORY_KEY_PREFIX=theirs.prefix, MEMORY_TENANT_ID=f"{theirs.namespace}/bot")

    async def run() -> None:
        async with AsyncAgentMemory.from_env(env) as memory:
            await memory.conversation("c", "u1").append("human", "x")

    with pytest.raises(MemoryPermissionError) as caught:
        asyncio.run(run())
    assert type(caught.value) is MemoryPermissionError
    assert mine.env("alpha")["REDIS_PASSWORD"] not in str(caught.value)
    assert theirs.memory(None).conversation("c", "u1", agent="alpha").count() == 0


def _connections(engine: Engine, user: str) -> int:
    with engine.admin_client() as admin:
        return sum(1 for c in admin.client_list() if c.get("user") == user)


def _eventually_no_connections(engine: Engine, user: str) -> bool:
    deadline = time.monotonic() + 5
    while _connections(engine, user) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _connections(engine, user) == 0


def test_async_with_from_env_closes_the_client_also_on_error(tenant: Tenant, engine: Engine) -> None:
    user = tenant.env("alpha")["REDIS_USERNAME"]

    kept: list[AsyncAgentMemory] = []  # referenced, so only close() (not garbage collection) can disconnect it

    async def use(fail: bool) -> int:
        async with AsyncAgentMemory.from_env(tenant.env("alpha")) as memory:
            kept.append(memory)
            chat = memory.conversation("c", "u1")
            await chat.append("human", "x")
            open_now = _connections(engine, user)
            if fail:
                raise RuntimeError("boom")
            return open_now

    assert asyncio.run(use(fail=False)) >= 1
    assert _eventually_no_connections(engine, user)
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(use(fail=True))
    assert _eventually_no_connections(engine, user)
    assert tenant.memory("alpha").conversation("c", "u1").count() == 2


def test_a_cancelled_write_still_completes_on_its_thread(tenant: Tenant) -> None:
    """The documented caveat: cancelling the await does not stop the write already running."""
    memory = AsyncAgentMemory(tenant.memory("alpha"))
    chat = memory.conversation("c", "u1")
    started, release = threading.Event(), threading.Event()

    def slow() -> Iterator[tuple[str, str]]:  # consumed on the worker thread by extend
        started.set()
        release.wait(10)
        yield ("human", "written after the cancel")

    async def run() -> bool:
        task = asyncio.create_task(chat.extend(slow()))
        assert await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        release.set()
        return task.cancelled()

    assert asyncio.run(run())  # asyncio.run waits for the default executor's threads before returning
    assert [m.content for m in chat.sync.messages()] == ["written after the cancel"]


def test_every_other_operation_forwards_its_arguments_and_returns_the_sync_result(tenant: Tenant) -> None:
    sync = tenant.memory(None)
    memory = AsyncAgentMemory(sync)
    chat = memory.conversation("c", "jane", agent="alpha", summarizer=ExtractiveSummarizer())
    same = sync.conversation("c", "jane", agent="alpha")

    async def write() -> tuple[list[Message], TrimResult]:
        written = await chat.extend([("human", f"invoice {i} is wrong. " + "word " * 20) for i in range(12)])
        return written, await chat.trim_to_tokens(100)

    written, trim = asyncio.run(write())
    assert len(written) == 12 and trim.removed > 0 and trim.removed + trim.kept == 12
    assert trim.summary is not None and asyncio.run(chat.summary()) == trim.summary == same.summary()
    assert asyncio.run(chat.messages()) == same.messages() == written[trim.removed :]
    assert asyncio.run(chat.within_tokens(60)) == same.within_tokens(60) != []
    windowed = asyncio.run(chat.optimized(1000, window=2))
    assert windowed == same.optimized(1000, window=2) != same.optimized(1000)
    assert asyncio.run(chat.optimized(1000)) == same.optimized(1000)
    assert asyncio.run(memory.usage()) == sync.usage()
    assert asyncio.run(memory.agent_report(7)) == sync.agent_report(7)
    assert [r.preview for r in asyncio.run(memory.agent_report(7))] == [written[-1].content[:7]]
    assert asyncio.run(memory.audit_events(3)) == sync.audit_events(3)
    assert len(asyncio.run(memory.audit_events(3))) == 3
    assert asyncio.run(memory.verify_audit()) == sync.verify_audit()
    export = asyncio.run(memory.export_subject("jane"))
    assert [len(c["messages"]) for c in export["conversations"]] == [trim.kept]
    assert export["summaries"][0]["summary"] == trim.summary
    assert asyncio.run(memory.erase_subject("jane")).deleted == 2 and same.count() == 0
    other = memory.conversation("c", "bob", agent="beta")
    asyncio.run(other.append("human", "x"))
    assert asyncio.run(other.clear()) == 1 and asyncio.run(other.count()) == 0
    ctx = memory.shared_context("plan")
    asyncio.run(ctx.create({"a": 1}))
    assert ctx.name == "plan" and asyncio.run(ctx.delete()) == 2 and asyncio.run(ctx.get()) is None
