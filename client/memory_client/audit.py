"""The tenant's audit trail: hash-chained events in one Redis stream, and their verification.

Each event's ``h`` is SHA-256 over the previous event's ``h`` and the event's own fields, so removing,
editing or reordering an entry breaks the chain from that entry on. Writers link to the head they read
under WATCH (see `memory_client._store`), so concurrent writers still produce one unbroken chain.
Events hold who, what, when and counts: never content, never a subject's identity (only its key pseudonym).

Tenant users may XADD but not DEL/XTRIM/XDEL the stream (ACL selector). XADD's MAXLEN/MINID options can still
trim it (ACLs do not inspect arguments); the verifier catches that: the oldest remaining event must link to
the genesis, or to the anchor a legitimate (admin) retention trim recorded.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, Final, NamedTuple

from memory_client._resp import HOLE, Arg, Hole, Template

__all__ = ["GENESIS", "AuditEvent", "ChainVerification", "chain_hash", "verify_entries"]

GENESIS: Final = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    """What happened; `fields()` adds who and when at the moment of writing."""

    action: str  # save, read, delete, export, erase, trim, context.create, context.update, ...
    target: str = ""  # the key acted on (key names hold pseudonyms, no content)
    count: int = 0  # messages, keys or fields involved
    subject: str = ""  # the subject's pseudonym, for "everything done to this subject" queries
    masked: Mapping[str, int] = field(default_factory=dict)

    def fields(self, actor: str, now_ms: int) -> dict[str, str]:
        out = {"v": "1", "ts": str(now_ms), "actor": actor, "action": self.action, "target": self.target}
        out["n"] = str(self.count)
        if self.subject:
            out["subject"] = self.subject
        if self.masked:
            out["masked"] = self._masked_json()
        return out

    def _masked_json(self) -> str:
        return _counts_json(tuple(self.masked.items()))

    def xadd(self, stream: str, actor: str, now_ms: int, prev: str) -> tuple[bytes, str]:
        """The packed XADD appending this event to `stream`, linked to `prev`, and the event's hash `h`.

        Its fields are `fields()`, then `prev` and `h`. The append path's shortcut to packing those and
        `chain_hash()`: everything but the time, the masked counts and the links is packed, and written out as
        canonical JSON in its sorted key order, once per event shape (tests hold both to the generic forms).
        """
        shape = _event_shape(stream, actor, self.action, self.target, self.count, self.subject, bool(self.masked))
        ts = str(now_ms)  # digits (and a sign): nothing to escape in JSON
        if self.masked:
            counts = self._masked_json()
            canonical = f'{shape.head},"masked":{encode_basestring(counts)}{shape.middle}{ts}{shape.tail}'
            digest = hashlib.sha256(f"{prev}\n{canonical}".encode()).hexdigest()
            return shape.xadd.fill(ts.encode(), counts.encode(), prev.encode(), digest.encode()), digest
        canonical = f"{shape.head}{shape.middle}{ts}{shape.tail}"
        digest = hashlib.sha256(f"{prev}\n{canonical}".encode()).hexdigest()
        return shape.xadd.fill(ts.encode(), prev.encode(), digest.encode()), digest


@functools.lru_cache(maxsize=256)
def _counts_json(counts: tuple[tuple[str, int], ...]) -> str:
    """{"email":1,"phone":2}: sorted compact JSON of detector names (plain ASCII) and counts (a few shapes recur)."""
    return "{" + ",".join([f'"{name}":{int(n)}' for name, n in sorted(counts)]) + "}"


class _EventShape(NamedTuple):
    """What events alike but for their time, masked counts and links share: their XADD with holes for those, and
    their canonical JSON around the masked counts (between `head` and `middle`) and the time (before `tail`)."""

    xadd: Template
    head: str
    middle: str
    tail: str


@functools.lru_cache(maxsize=1024)
def _event_shape(
    stream: str, actor: str, action: str, target: str, count: int, subject: str, masked: bool
) -> _EventShape:
    n = str(count)
    fields: list[Arg | Hole] = ["v", "1", "ts", HOLE, "actor", actor, "action", action, "target", target, "n", n]
    if subject:
        fields += ["subject", subject]
    if masked:
        fields += ["masked", HOLE]
    xadd = Template([("XADD", stream, "*", *fields, "prev", HOLE, "h", HOLE)])
    head = f'{{"action":{encode_basestring(action)},"actor":{encode_basestring(actor)}'
    about = f',"subject":{encode_basestring(subject)}' if subject else ""
    middle = f',"n":"{n}"{about},"target":{encode_basestring(target)},"ts":"'
    return _EventShape(xadd, head, middle, '","v":"1"}')


def canonical_json(fields: Mapping[str, str]) -> str:
    """The form hashed into the chain: json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).

    Fields are flat strings, so it is built from json's own string encoder: the same text (tested) for a fraction
    of json.dumps' per-call cost, which matters on the append path.
    """
    return "{" + ",".join([f"{encode_basestring(k)}:{encode_basestring(fields[k])}" for k in sorted(fields)]) + "}"


def chain_hash(prev: str, fields: Mapping[str, str]) -> str:
    return hashlib.sha256(f"{prev}\n{canonical_json(fields)}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainVerification:
    """`ok` when every entry's hash and link check out; else `first_bad` is the stream id of the first that does
    not, with `reason`. `from_genesis` is False when the trail starts at the given anchor (the hash of the last
    event a retention trim removed) instead of the genesis: only what is left was checked."""

    ok: bool
    checked: int
    first_bad: str | None = None
    reason: str | None = None
    from_genesis: bool = True


class ChainVerifier:
    """Feeds entries oldest first; stops at the first bad one."""

    def __init__(self, anchor: str = GENESIS) -> None:
        self.anchor = anchor
        self.prev: str | None = None
        self.checked = 0
        self.from_genesis = True
        self.failure: tuple[str, str] | None = None

    def feed(self, entry_id: str, raw: Mapping[str, str]) -> bool:
        fields = {k: v for k, v in raw.items() if k not in ("prev", "h")}
        prev, stored = raw.get("prev", ""), raw.get("h", "")
        if self.prev is None:
            self.from_genesis = prev == GENESIS
            if prev not in (GENESIS, self.anchor):
                self.failure = (
                    entry_id,
                    "the oldest entry links to neither the genesis nor the anchor: entries before it were removed",
                )
                return False
        elif prev != self.prev:
            self.failure = (entry_id, "does not link to the entry before it: an entry was removed or reordered")
            return False
        if chain_hash(prev, fields) != stored:
            self.failure = (entry_id, "its hash does not match its fields: the entry was edited")
            return False
        self.prev = stored
        self.checked += 1
        return True

    def result(self) -> ChainVerification:
        bad, reason = self.failure or (None, None)
        return ChainVerification(self.failure is None, self.checked, bad, reason, self.from_genesis)


def verify_entries(entries: list[tuple[str, dict[str, Any]]], anchor: str = GENESIS) -> ChainVerification:
    """Verify a whole trail given as (id, fields) pairs, oldest first."""
    verifier = ChainVerifier(anchor)
    for entry_id, fields in entries:
        if not verifier.feed(entry_id, fields):
            break
    return verifier.result()
