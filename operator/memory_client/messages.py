"""The message record: what a conversation stores per entry, and its serialized form (before encryption)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

__all__ = ["Message"]


@dataclass(frozen=True)
class Message:
    """One message. `id` is the stream entry id and `timestamp` the server time of the write (set once)."""

    role: str
    content: str
    agent: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    timestamp: datetime | None = None

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {"r": self.role, "c": self.content}
        if self.agent:
            doc["a"] = self.agent
        if self.metadata:
            doc["m"] = self.metadata
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes, entry_id: str | None = None) -> Message:
        doc = json.loads(data)
        message = cls(doc["r"], doc["c"], doc.get("a"), doc.get("m", {}))
        return message.stored_as(entry_id) if entry_id is not None else message

    def stored_as(self, entry_id: str) -> Message:
        """This message with the id the server gave it; the id's first part is the server's clock in ms."""
        when = datetime.fromtimestamp(int(entry_id.split("-", 1)[0]) / 1000, tz=UTC)
        return replace(self, id=entry_id, timestamp=when)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "agent": self.agent,
            "metadata": self.metadata,
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
        }
