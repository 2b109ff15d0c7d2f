"""What `AgentMemory.export_subject` exports of the LangGraph adapters' keys in a subject's index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memory_client._client import AgentMemory
from memory_client._messages import RejectedEntry
from memory_client.errors import DecryptionError
from memory_client.langgraph.checkpoint import TenantCheckpointer
from memory_client.langgraph.store import TenantStore

__all__ = ["export_keys"]


def export_keys(memory: AgentMemory, keys: Sequence[str]) -> tuple[dict[str, list[Any]], list[RejectedEntry]]:
    """Store items and checkpoint threads under `keys` (a namespace's index hash holds no content: skipped), by
    the area each key lies in. Values that do not open are listed as rejected, not exported."""
    items: list[dict[str, Any]] = []
    threads: list[dict[str, Any]] = []
    rejected: list[RejectedEntry] = []
    for key in keys:
        area, _, rest = key.partition(":lg:")
        try:
            if rest.startswith("it:"):
                store = TenantStore(memory, shared=True)
                store.prefix = f"{area}:lg:"  # the area the key lies in, whichever agent's it is
                item = store.export_item(key)
                if item:
                    items.append(item)
            elif rest.startswith("th:"):
                thread = TenantCheckpointer(memory, shared=True).export_thread(key)
                if thread:
                    threads.append(thread)
        except DecryptionError as exc:
            rejected.append(RejectedEntry(key, None, exc.reason))
    return {"storeItems": items, "threads": threads}, rejected
