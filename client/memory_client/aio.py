"""asyncio facade: the sync library run on worker threads with `asyncio.to_thread`, so the event loop never blocks.

Each `await` runs exactly the sync operation on a thread of the loop's default executor, so the guarantees are the
sync library's (atomic audited writes, ordering, masking, encryption, quotas) and its typed errors
(`ConflictError`, `MemoryPermissionError`, `QuotaExceededError`, ...) propagate unchanged. Token counters,
summarizers and optimizers are called on that thread too, so they must be plain (sync) callables.

Concurrency is bounded by the default executor (``min(32, os.cpu_count() + 4)`` threads unless the loop is given
another) and by the redis connection pool (`max_connections`, redis-py's default 100; a full pool is a
`MemoryConnectionError`): more concurrent awaits than threads simply queue.

Cancelling an await does NOT stop an operation already running on its thread: it completes or fails on its own.
A cancelled `append` may therefore still have been stored (and audited); re-read before retrying it.

Usage::

    from memory_client.aio import AsyncAgentMemory

    async with AsyncAgentMemory.from_env() as memory:
        chat = memory.conversation("ticket-4711", subject="user-42")
        await chat.append("human", "My card 4111 1111 1111 1111 was charged twice")
        recent = await chat.within_tokens(2000)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from memory_client._client import AgentActivity, AgentMemory, AuditRecord, ErasureReceipt, Usage
from memory_client._config import MemoryConfig
from memory_client._conversation import ConversationMemory, TrimResult
from memory_client._messages import Message, RejectedEntry
from memory_client._optimize import ContextOptimizer, OptimizedContext, Summarizer
from memory_client._shared import AccessLogEntry, SharedContext, SharedState
from memory_client._tokens import TokenCounter
from memory_client.audit import GENESIS, ChainVerification

__all__ = ["AsyncAgentMemory", "AsyncConversationMemory", "AsyncSharedContext"]


class AsyncConversationMemory:
    """`ConversationMemory` with awaitable operations; `sync` is the wrapped handle."""

    def __init__(self, sync: ConversationMemory) -> None:
        self.sync = sync

    @property
    def agent(self) -> str:
        return self.sync.agent

    @property
    def conversation(self) -> str:
        return self.sync.conversation

    @property
    def subject(self) -> str:
        return self.sync.subject

    @property
    def key(self) -> str:
        return self.sync.key

    @property
    def rejected(self) -> tuple[RejectedEntry, ...]:
        """`ConversationMemory.rejected`: what the last read on this handle skipped."""
        return self.sync.rejected

    async def append(self, role: str, content: str, metadata: dict[str, Any] | None = None) -> Message:
        """`ConversationMemory.append` on a worker thread."""
        return await asyncio.to_thread(self.sync.append, role, content, metadata)

    async def extend(
        self, messages: Iterable[tuple[str, str] | tuple[str, str, dict[str, Any] | None]]
    ) -> list[Message]:
        """`ConversationMemory.extend` on a worker thread (the iterable is consumed there)."""
        return await asyncio.to_thread(self.sync.extend, messages)

    async def clear(self) -> int:
        """`ConversationMemory.clear` on a worker thread."""
        return await asyncio.to_thread(self.sync.clear)

    async def last(self, n: int) -> list[Message]:
        """`ConversationMemory.last` on a worker thread."""
        return await asyncio.to_thread(self.sync.last, n)

    async def messages(self) -> list[Message]:
        """`ConversationMemory.messages` on a worker thread."""
        return await asyncio.to_thread(self.sync.messages)

    async def count(self) -> int:
        """`ConversationMemory.count` on a worker thread."""
        return await asyncio.to_thread(self.sync.count)

    async def within_tokens(self, budget: int) -> list[Message]:
        """`ConversationMemory.within_tokens` on a worker thread."""
        return await asyncio.to_thread(self.sync.within_tokens, budget)

    async def summary(self) -> str | None:
        """`ConversationMemory.summary` on a worker thread."""
        return await asyncio.to_thread(self.sync.summary)

    async def optimized(
        self, budget: int, optimizer: ContextOptimizer | None = None, window: int = 500
    ) -> OptimizedContext:
        """`ConversationMemory.optimized` on a worker thread."""
        return await asyncio.to_thread(self.sync.optimized, budget, optimizer, window)

    async def trim_to_tokens(self, limit: int) -> TrimResult:
        """`ConversationMemory.trim_to_tokens` on a worker thread."""
        return await asyncio.to_thread(self.sync.trim_to_tokens, limit)


class AsyncSharedContext:
    """`SharedContext` with awaitable operations; `sync` is the wrapped handle."""

    def __init__(self, sync: SharedContext) -> None:
        self.sync = sync

    @property
    def name(self) -> str:
        return self.sync.name

    async def create(self, data: dict[str, Any], *, subjects: Iterable[str] = ()) -> SharedState:
        """`SharedContext.create` on a worker thread."""
        return await asyncio.to_thread(self.sync.create, data, subjects=tuple(subjects))

    async def get(self) -> SharedState | None:
        """`SharedContext.get` on a worker thread."""
        return await asyncio.to_thread(self.sync.get)

    async def update(
        self, changes: dict[str, Any], expected_version: int, *, subjects: Iterable[str] = ()
    ) -> SharedState:
        """`SharedContext.update` on a worker thread."""
        return await asyncio.to_thread(self.sync.update, changes, expected_version, subjects=tuple(subjects))

    async def access_log(self, count: int = 100) -> list[AccessLogEntry]:
        """`SharedContext.access_log` on a worker thread."""
        return await asyncio.to_thread(self.sync.access_log, count)

    async def delete(self) -> int:
        """`SharedContext.delete` on a worker thread."""
        return await asyncio.to_thread(self.sync.delete)


class AsyncAgentMemory:
    """`AgentMemory` with awaitable operations; `sync` is the wrapped client. Close it (or use `async with`)."""

    def __init__(self, sync: AgentMemory) -> None:
        self.sync = sync

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, keyring_file: str | Path | None = None, **options: Any
    ) -> AsyncAgentMemory:
        """`AgentMemory.from_env`, wrapped (connects lazily: nothing here blocks on the network)."""
        return cls(AgentMemory.from_env(env, keyring_file=keyring_file, **options))

    @property
    def config(self) -> MemoryConfig:
        return self.sync.config

    async def close(self) -> None:
        """`AgentMemory.close` on a worker thread."""
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncAgentMemory:
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def conversation(
        self,
        conversation: str,
        subject: str,
        *,
        agent: str | None = None,
        counter: TokenCounter | None = None,
        summarizer: Summarizer | None = None,
    ) -> AsyncConversationMemory:
        """`AgentMemory.conversation`, wrapped (builds a handle, no I/O)."""
        return AsyncConversationMemory(
            self.sync.conversation(conversation, subject, agent=agent, counter=counter, summarizer=summarizer)
        )

    def shared_context(self, name: str) -> AsyncSharedContext:
        """`AgentMemory.shared_context`, wrapped (builds a handle, no I/O)."""
        return AsyncSharedContext(self.sync.shared_context(name))

    async def usage(self) -> Usage:
        """`AgentMemory.usage` on a worker thread."""
        return await asyncio.to_thread(self.sync.usage)

    async def agent_report(self, preview_chars: int = 80) -> list[AgentActivity]:
        """`AgentMemory.agent_report` on a worker thread."""
        return await asyncio.to_thread(self.sync.agent_report, preview_chars)

    async def export_subject(self, subject: str) -> dict[str, Any]:
        """`AgentMemory.export_subject` on a worker thread."""
        return await asyncio.to_thread(self.sync.export_subject, subject)

    async def erase_subject(self, subject: str) -> ErasureReceipt:
        """`AgentMemory.erase_subject` on a worker thread."""
        return await asyncio.to_thread(self.sync.erase_subject, subject)

    async def audit_events(self, count: int = 100) -> list[AuditRecord]:
        """`AgentMemory.audit_events` on a worker thread."""
        return await asyncio.to_thread(self.sync.audit_events, count)

    async def verify_audit(self, anchor: str = GENESIS) -> ChainVerification:
        """`AgentMemory.verify_audit` on a worker thread."""
        return await asyncio.to_thread(self.sync.verify_audit, anchor)
