"""The message record: what a conversation stores per entry, and its serialized form (before encryption); entries a
reader refused; masking of the structured values stored next to text (metadata, shared-context data)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, Final

__all__ = ["Message", "RejectedEntry", "mask_values"]

_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Message:
    """One message. `id` is the stream entry id, whose first part is the server's clock at the write: that is the
    message's `timestamp`, set once by the server and never stored twice."""

    role: str
    content: str
    agent: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    @property
    def timestamp(self) -> datetime | None:
        """The server time of the write (None before the message is stored)."""
        if self.id is None:
            return None
        return datetime.fromtimestamp(int(self.id.partition("-")[0]) / 1000, tz=UTC)

    def to_bytes(self) -> bytes:
        return self.encode(self.role, self.content, self.agent, self.metadata)

    @staticmethod
    def encode(role: str, content: str, agent: str | None, metadata: dict[str, Any]) -> bytes:
        """The serialized form (before encryption), built without a Message: the append path's shortcut.

        The same text as json.dumps({"r": role, "c": content[, "a": agent][, "m": metadata]}, separators=(",", ":"),
        ensure_ascii=False) (tested), from json's own string encoder at a fraction of json.dumps' per-call cost.
        """
        text = f'{{"r":{encode_basestring(role)},"c":{encode_basestring(content)}'
        if agent:
            text += f',"a":{encode_basestring(agent)}'
        if metadata:
            text += f',"m":{_COMPACT.encode(metadata)}'
        return f"{text}}}".encode()

    @classmethod
    def from_bytes(cls, data: bytes, entry_id: str | None = None) -> Message:
        doc = json.loads(data)
        return cls(doc["r"], doc["c"], doc.get("a"), doc.get("m", {}), entry_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "agent": self.agent,
            "metadata": self.metadata,
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
        }


@dataclass(frozen=True)
class RejectedEntry:
    """A stored value a reader skipped: where it is (`key`, and the stream entry `id` for messages) and why
    (`DecryptionError.reason`: plaintext, authentication, unknown-key, format, misplaced, replayed, malformed)."""

    key: str
    id: str | None
    reason: str

    def to_dict(self) -> dict[str, str | None]:
        return {"key": self.key, "id": self.id, "reason": self.reason}


def mask_values(mask: Callable[[str], tuple[str, dict[str, int]]], value: Any, counts: dict[str, int]) -> Any:
    """`value` with every string in it (recursively through dicts, lists and tuples; dict keys are names and stay)
    masked by `mask`; the detectors' counts are added to `counts`."""
    if isinstance(value, str):
        text, found = mask(value)
        for name, n in found.items():
            counts[name] = counts.get(name, 0) + n
        return text
    if isinstance(value, dict):
        return {k: mask_values(mask, v, counts) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_values(mask, v, counts) for v in value]
    return value
