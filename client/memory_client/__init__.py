"""The agent memory library: what an agent imports to keep memory inside its tenant's namespace.

Configured from the credentials Secret (`envFrom`) and the keyring Secret (env `MEMORY_KEYRING` or a mounted
file); no kopf or kubernetes imports, so agents install only redis, cryptography (and langchain-core for
`memory_client.langchain`)::

    from memory_client import AgentMemory
    with AgentMemory.from_env() as memory:
        chat = memory.conversation("ticket-4711", subject="user-42")
        chat.append("human", "My card 4111 1111 1111 1111 was charged twice")   # stored masked + encrypted
        recent = chat.within_tokens(2000)

asyncio agents use `AsyncAgentMemory` (same API, awaitable; the sync operations on worker threads).

Public modules: this package (its `__all__`), `aio`, `langchain` (extra), `errors`, `audit` (the hash chain's
format and verifier, which the operator appends to as well), `seal` (the operator's seal of the trail),
`contract` (names, key schema, env and keyring format shared with the operator and its jobs) and `wire` (raw
RESP2 round trips, for the operator's jobs). Everything else is `_private`.

Key schema (defined in `memory_client.contract`; P = MEMORY_KEY_PREFIX ``mem:{ns}:{name}:``; A = the agent's
area ``P agent:{agent}:``, which is MEMORY_AGENT_PREFIX under strict isolation; S = MEMORY_SHARED_PREFIX
``P shared:``; {subj} is a pseudonym, the first 32 hex digits of HMAC-SHA256(keyring pseudonym key, tenant id
NUL subject) — of the unkeyed SHA-256 for keyrings without that key — so user ids never appear in key names)::

    A conv:{conversation}:{subj}           stream  one entry per message, field m = envelope(message JSON)
    A conv:{conversation}:{subj}:summary   string  envelope(summary of trimmed messages)
    S subject:{subj}                       set     every key holding the subject's data (export/erase, no SCAN)
    S ctx:{name}                           hash    shared context: v (version), d (envelope(JSON)), by, at
                                                   (in subject:{subj} when tagged with the subject)
    S ctx:{name}:log                       stream  shared-context access log: actor, v, keys changed
    S activity                             hash    {agent}:n / {agent}:at / {agent}:key (cross-agent report)
    S usage                                hash    bytes written by the library and not deleted (quota)
    S sizes                                hash    data key -> bytes; HLEN = data keys (quota)
    MEMORY_AUDIT_KEY (audit:{ns}:{name})   stream  the hash-chained audit trail (append/read-only ACL selector)

Conversations live under the agent's area so a strict agent's memory is its own; everything agents share,
including the indexes, lives under S, which every user of the tenant may reach. An envelope is a value
sealed with AES-256-GCM under the keyring's active key, bound to its key name and its place: a message's write
time, a shared context's version and writer (see `memory_client._crypto`).
"""

from __future__ import annotations

from memory_client._client import AgentActivity, AgentMemory, AuditRecord, ErasureReceipt, Usage
from memory_client._config import MemoryConfig
from memory_client._conversation import ConversationMemory, TrimResult
from memory_client._crypto import Cipher, Keyring, KeyringKey
from memory_client._masking import Masker, MaskResult
from memory_client._messages import Message, RejectedEntry
from memory_client._optimize import (
    ContextOptimizer,
    ExtractiveSummarizer,
    ImportanceScorer,
    KeywordImportanceScorer,
    OptimizationStats,
    OptimizedContext,
    Summarizer,
)
from memory_client._shared import AccessLogEntry, SharedContext, SharedState
from memory_client._tokens import HeuristicTokenCounter, TokenCounter, default_token_counter
from memory_client.aio import AsyncAgentMemory, AsyncConversationMemory, AsyncSharedContext
from memory_client.audit import AuditEvent, ChainVerification
from memory_client.contract import MASKING_DETECTORS
from memory_client.errors import (
    AgentMemoryError,
    AuditTrailError,
    ConfigError,
    ConflictError,
    DecryptionError,
    MemoryConnectionError,
    MemoryPermissionError,
    NotReplicatedError,
    PartialWriteError,
    QuotaExceededError,
    StoreError,
)

__all__ = [
    "MASKING_DETECTORS",
    "AccessLogEntry",
    "AgentActivity",
    "AgentMemory",
    "AgentMemoryError",
    "AsyncAgentMemory",
    "AsyncConversationMemory",
    "AsyncSharedContext",
    "AuditEvent",
    "AuditRecord",
    "AuditTrailError",
    "ChainVerification",
    "Cipher",
    "ConfigError",
    "ConflictError",
    "ContextOptimizer",
    "ConversationMemory",
    "DecryptionError",
    "ErasureReceipt",
    "ExtractiveSummarizer",
    "HeuristicTokenCounter",
    "ImportanceScorer",
    "Keyring",
    "KeyringKey",
    "KeywordImportanceScorer",
    "MaskResult",
    "Masker",
    "MemoryConfig",
    "MemoryConnectionError",
    "MemoryPermissionError",
    "Message",
    "NotReplicatedError",
    "OptimizationStats",
    "OptimizedContext",
    "PartialWriteError",
    "QuotaExceededError",
    "RejectedEntry",
    "SharedContext",
    "SharedState",
    "StoreError",
    "Summarizer",
    "TokenCounter",
    "TrimResult",
    "Usage",
    "default_token_counter",
]
