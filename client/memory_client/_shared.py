"""Shared context across a tenant's agents: a versioned document updated by compare-and-set, with an access log.

The document is one hash (version, encrypted JSON, who, when) under the shared prefix, so every agent can
reach it under every isolation level. An update names the version it was based on; if the stored version
differs the update is refused with ConflictError instead of overwriting someone else's change.

The document is sealed for its key, version, writer and time, so an envelope put back under another version (a
rollback) or edited fields fail with `DecryptionError`; every string value is masked per the policy before it is
stored. A context that holds a subject's data can be tagged with it (`subjects=`): it joins the subject's index,
so `erase_subject` deletes it and `export_subject` includes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from memory_client._messages import mask_values
from memory_client._resp import Command
from memory_client._session import Session
from memory_client._store import Plan, decode_fields
from memory_client.audit import AuditEvent
from memory_client.errors import ConflictError, DecryptionError

__all__ = ["AccessLogEntry", "SharedContext", "SharedState"]


@dataclass(frozen=True)
class SharedState:
    data: dict[str, Any]
    version: int
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class AccessLogEntry:
    actor: str
    version: int
    keys: list[str]
    at: datetime


def _ms_to_datetime(ms: bytes | str) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _place(version: int | bytes, actor: str | bytes, at: int | bytes) -> bytes:
    """What a document is sealed for besides its key: its version, writer and time (NUL-separated)."""
    parts = [p if isinstance(p, bytes) else str(p).encode() for p in (version, actor, at)]
    return b"\x00".join(parts)


class SharedContext:
    def __init__(self, session: Session, name: str) -> None:
        self._session = session
        self.name = name
        self.key = session.keys.context(name)
        self.log_key = session.keys.context_log(self.key)

    def _state(self, reply: list[Any]) -> SharedState | None:
        """The stored state; DecryptionError when the document is not the one sealed for this version and writer."""
        version, data, by, at = reply
        if version is None:
            return None
        if data is None or by is None or at is None or not version.isdigit() or not at.isdigit():
            raise DecryptionError(f"shared context under {self.key} is incomplete", "format")
        place = _place(version, by, at)
        try:
            doc = json.loads(self._session.cipher.open(data, self.key, place))
        except ValueError:  # not JSON: only possible for a plain value, where encryption is not required
            raise DecryptionError(f"shared context under {self.key} is not a JSON document", "format") from None
        return SharedState(doc, int(version), by.decode(), _ms_to_datetime(at))

    def _mask(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
        counts: dict[str, int] = {}
        masked: dict[str, Any] = mask_values(self._session.masker.apply, data, counts)
        return masked, counts

    def _write(
        self,
        data: dict[str, Any],
        version: int,
        changed: list[str],
        action: str,
        masked: dict[str, int],
        subjects: Iterable[str],
    ) -> Plan:
        actor, now = self._session.config.actor, time.time_ns() // 1_000_000
        plain = json.dumps(data, separators=(",", ":")).encode()
        envelope = self._session.cipher.seal(plain, self.key, _place(version, actor, now))
        commands: list[Command] = [
            ("HSET", self.key, "v", version, "d", envelope, "by", actor, "at", now),
            ("XADD", self.log_key, "*", "actor", actor, "v", version, "keys", json.dumps(changed)),
            *self._session.retention_commands(self.key),
            *self._session.retention_commands(self.log_key),
            *self._session.usage_commands(self.key, len(envelope)),
        ]
        for subject in subjects:  # erasure and export find the context through the subject's index
            index = self._session.keys.subject_index(subject)
            commands += [("SADD", index, self.key), *self._session.retention_commands(index)]
        return commands, self._session.event(AuditEvent(action, self.key, len(changed), masked=masked))

    def _transact(self, decide: Any, size_hint: int) -> None:
        reads: list[Command] = [("HMGET", self.key, "v", "d", "by", "at")]
        self._session.write_data(self.key, size_hint, decide, reads=reads, watch=[self.key])

    def create(self, data: dict[str, Any], *, subjects: Iterable[str] = ()) -> SharedState:
        """Create the context at version 1 (string values masked per the policy); ConflictError if it exists.

        `subjects`: the users whose data it holds; erasing one of them deletes the context.
        """
        masked_data, counts = self._mask(dict(data))
        tags = tuple(subjects)

        def decide(reads: list[Any]) -> Plan:
            if reads[0][0] is not None:
                raise ConflictError(f"shared context {self.name!r} exists already", int(reads[0][0]))
            return self._write(masked_data, 1, sorted(data), "context.create", counts, tags)

        self._transact(decide, len(json.dumps(masked_data)))
        return SharedState(masked_data, 1, self._session.config.actor, datetime.now(UTC))

    def get(self) -> SharedState | None:
        reply = self._session.audited_read([("HMGET", self.key, "v", "d", "by", "at")], self.key, "")[0]
        return self._state(reply)

    def update(self, changes: dict[str, Any], expected_version: int, *, subjects: Iterable[str] = ()) -> SharedState:
        """Merge `changes` (string values masked per the policy) into the context if it is still at
        `expected_version`; returns the new state. `subjects` adds tags (see `create`); tags are never removed.

        ConflictError (with the current version) when another agent updated it first: re-read and retry.
        """
        result: list[SharedState] = []
        masked_changes, counts = self._mask(dict(changes))
        tags = tuple(subjects)

        def decide(reads: list[Any]) -> Plan:
            current = self._state(reads[0])
            if current is None or current.version != expected_version:
                found = current.version if current else None
                raise ConflictError(
                    f"shared context {self.name!r} is at version {found}, not {expected_version}", found
                )
            merged = {**current.data, **masked_changes}
            result[:] = [SharedState(merged, current.version + 1, self._session.config.actor, datetime.now(UTC))]
            return self._write(merged, current.version + 1, sorted(changes), "context.update", counts, tags)

        self._transact(decide, len(json.dumps(masked_changes)))
        return result[0]

    def access_log(self, count: int = 100) -> list[AccessLogEntry]:
        """Who changed which keys, newest first."""
        entries = self._session.store.read([("XREVRANGE", self.log_key, "+", "-", "COUNT", count)])[0]
        out = []
        for entry_id, flat in entries:
            fields = decode_fields(flat)
            at = _ms_to_datetime(entry_id.decode().split("-", 1)[0])
            out.append(AccessLogEntry(fields["actor"].decode(), int(fields["v"]), json.loads(fields["keys"]), at))
        return out

    def delete(self) -> int:
        return self._session.delete_keys([self.key, self.log_key], None, "context.delete", "")
