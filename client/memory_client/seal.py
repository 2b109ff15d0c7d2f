"""The seal of a tenant's audit trail: what the operator vouched for on its last pass, and how a trail is held to it.

The hash chain alone proves nothing against a writer of the trail: tenant users may XADD, and XADD's MAXLEN and
MINID options (which no ACL rule can forbid) trim the oldest entries, so a forger can replace the history with a
new chain from the genesis. A stream only ever loses entries from its oldest end (trims) or by XDEL (admin only),
and it reports what it lost (``XINFO STREAM``: ``entries-added`` minus ``length``). So the operator, the one party
a tenant does not control, seals each trail on every pass: its oldest entry, its newest verified entry and that
entry's hash, the entries ever added, and how many the operator itself trimmed, authenticated by an HMAC under a
key no tenant holds and stored where no tenant user may write. Against a seal:

* the oldest entry is the one sealed (or the one the operator's own trim, recorded before it ran, leaves): any
  other means entries were trimmed by someone else;
* entries ever added minus length is the operator's own trims: any more were deleted from the middle;
* entries ever added never decreases (the stream was not deleted and re-created);
* the sealed head is still there with the sealed hash, and every newer entry chains from it;
* no entry id is ahead of the server clock by more than `SKEW_MS` (a far-future id would take every later
  event's id with it, and one at the maximum stops every later append).

What a holder of tenant credentials can still do: append events of its own that look genuine (the chain proves
order and completeness, not authorship), and act through raw commands without writing an event at all.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Final, NamedTuple

from memory_client.audit import GENESIS, chain_hash
from memory_client.contract import SKEW_MS, as_text

__all__ = [
    "SKEW_MS",
    "Breach",
    "Seal",
    "TrailInfo",
    "TrailVerification",
    "advance",
    "check_info",
    "entry_key",
    "entry_ms",
    "verify_trail",
]

_PAGE: Final = 1000


def entry_ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream id as (ms, seq), for ordering."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class TrailInfo(NamedTuple):
    """What ``XINFO STREAM`` says about the trail."""

    length: int
    added: int  # entries-added: every entry ever appended, trimmed or not
    first_id: str  # "" when empty
    last_generated_id: str

    @classmethod
    def from_xinfo(cls, reply: Mapping[Any, Any]) -> TrailInfo:
        info = {as_text(k): v for k, v in reply.items()}
        first = info.get("first-entry")
        return cls(
            int(info["length"]),
            int(info["entries-added"]),
            as_text(first[0]) if first else "",
            as_text(info["last-generated-id"]),
        )


@dataclass(frozen=True)
class Breach:
    """The first thing found that the trail cannot explain: sticky once sealed."""

    reason: str
    entry_id: str = ""  # the entry it concerns, where there is one


@dataclass(frozen=True)
class Seal:
    """What the operator vouched for about one trail. All fields are public facts about the trail, never content."""

    stream: str
    first: str = ""  # the oldest entry's id when sealed ("": the trail was empty)
    head: str = ""  # the newest entry verified
    head_h: str = ""  # its hash
    added: int = 0  # entries-added when sealed
    trimmed: int = 0  # entries the operator trimmed, in total
    verified: int = 0  # entries verified since sealing began (trimmed ones included)
    next_first: str = ""  # while the operator trims: the oldest entry the trim leaves
    sealed_at: int = 0  # ms
    breach: str = ""  # the first breach found ("" none): kept once found
    breach_id: str = ""
    breach_at: int = 0

    @classmethod
    def from_status(cls, audit: Mapping[str, Any]) -> Seal:
        """From a MemoryTenant's `status.audit` (kubectl get -o json): what the operator last vouched for."""
        wire = {"head_h": "headHash", "added": "entriesAdded", "next_first": "nextFirst", "sealed_at": "sealedAt"}
        wire |= {"breach_id": "breachEntry", "breach_at": "breachAt"}
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = audit.get(wire.get(f.name, f.name))
            values[f.name] = value if value is not None else (0 if f.type == "int" else "")
        return cls.from_fields(values)

    def to_fields(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_fields(cls, raw: Mapping[Any, Any]) -> Seal:
        """From the stored hash (or status); ValueError when a field is missing or malformed."""
        values = {as_text(k): as_text(v) for k, v in raw.items()}
        try:
            kwargs: dict[str, Any] = {
                f.name: int(values[f.name]) if f.type == "int" else values[f.name] for f in fields(cls)
            }
        except (KeyError, ValueError) as exc:
            raise ValueError(f"not a seal ({type(exc).__name__}: {exc})") from None
        return cls(**kwargs)

    def mac(self, key: bytes) -> str:
        message = "\n".join(f"{k}={v}" for k, v in sorted(self.to_fields().items()))
        return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()

    def signed(self, key: bytes) -> dict[str, str]:
        return {**self.to_fields(), "mac": self.mac(key)}

    @classmethod
    def open(cls, raw: Mapping[Any, Any], key: bytes) -> Seal:
        """The stored seal, its MAC checked; ValueError when it was altered by anyone without the key."""
        mac = as_text(raw.get("mac", raw.get(b"mac", "")))
        seal = cls.from_fields({k: v for k, v in raw.items() if as_text(k) != "mac"})
        if not hmac.compare_digest(mac, seal.mac(key)):
            raise ValueError("the seal's MAC does not match: it was altered by someone without the operator's key")
        return seal

    def broken(self, breach: Breach, now_ms: int) -> Seal:
        if self.breach:  # the first stays on record
            return self
        return replace(self, breach=breach.reason, breach_id=breach.entry_id, breach_at=now_ms)


def check_info(seal: Seal, info: TrailInfo | None, now_ms: int, skew_ms: int = SKEW_MS) -> Breach | None:
    """The trail's shape against its seal: nothing removed but by the operator, nothing from the future."""
    if info is None:
        return Breach("the audit trail is gone (the stream was deleted)") if seal.head else None
    if info.added < seal.added:
        return Breach(f"entries-added fell from {seal.added} to {info.added}: the trail was deleted and re-created")
    if seal.first and info.first_id not in {seal.first, seal.next_first}:
        return Breach(
            "the oldest entries were removed by someone other than the operator (an XADD with MAXLEN or MINID)",
            info.first_id,
        )
    removed = info.added - info.length
    if removed != seal.trimmed and not (seal.next_first and info.first_id == seal.next_first):
        return Breach(f"{removed - seal.trimmed} entries were deleted from the trail beyond the operator's own trims")
    if entry_ms(info.last_generated_id) > now_ms + skew_ms:
        return Breach("an entry id is ahead of the server clock (a far-future id)", info.last_generated_id)
    return None


def advance(
    seal: Seal,
    info: TrailInfo | None,
    head_entry: Mapping[str, str] | None,
    newer: Iterable[tuple[str, Mapping[str, str]]],
    now_ms: int,
    skew_ms: int = SKEW_MS,
) -> Seal:
    """The next seal, from the trail as it is now: `head_entry` is the sealed head's fields as stored (None when
    absent), `newer` the entries after it, oldest first. A breach is recorded in the seal (the first one stays)
    and sealing goes on from what is there, so later tampering is still told apart from the recorded one."""
    breach = check_info(seal, info, now_ms, skew_ms)
    if info is None:
        return replace(seal, sealed_at=now_ms).broken(breach, now_ms) if breach else replace(seal, sealed_at=now_ms)
    if breach is None and seal.head and (head_entry is None or head_entry.get("h") != seal.head_h):
        breach = Breach("the sealed head entry is missing or changed", seal.head)
    prev = seal.head_h if seal.head and breach is None else None
    head, head_h, verified = seal.head, seal.head_h, seal.verified
    for entry_id, raw in newer:
        entry = {k: v for k, v in raw.items() if k not in ("prev", "h")}
        link, stored = raw.get("prev", ""), raw.get("h", "")
        if breach is None:
            # The oldest entry of a trail sealed empty links to the genesis. A trail found already written (sealed
            # for the first time: sealed_at 0) is taken as it is: protection starts at the first seal.
            if prev is None and not seal.first and seal.sealed_at and link != GENESIS:
                breach = Breach("the oldest entry links to neither the genesis nor a sealed entry", entry_id)
            elif prev is not None and link != prev:
                breach = Breach("an entry does not link to the entry before it", entry_id)
            elif chain_hash(link, entry) != stored:
                breach = Breach("an entry's hash does not match its fields", entry_id)
            elif entry_ms(entry_id) > now_ms + skew_ms:
                breach = Breach("an entry id is ahead of the server clock (a far-future id)", entry_id)
        prev, head, head_h, verified = stored, entry_id, stored, verified + 1
    sealed = replace(
        seal,
        first=info.first_id,
        head=head,
        head_h=head_h,
        added=info.added,
        trimmed=info.added - info.length,
        verified=verified,
        next_first="",
        sealed_at=now_ms,
    )
    return sealed.broken(breach, now_ms) if breach else sealed


@dataclass(frozen=True)
class TrailVerification:
    """A whole trail walked oldest first against a seal (or, with none, against the genesis only)."""

    ok: bool
    checked: int
    sealed: bool  # a seal was given and the walk reached its head
    reason: str | None = None
    first_bad: str | None = None
    unsealed: int = 0  # entries newer than the seal's head: chained, but not yet vouched for by the operator


Reader = Callable[[str, str, int], list[tuple[str, dict[str, str]]]]  # XRANGE start end COUNT, decoded


def verify_trail(
    read: Reader,
    info: TrailInfo | None,
    seal: Seal | None,
    now_ms: int,
    each: Callable[[str, Mapping[str, str]], None] | None = None,
    skew_ms: int = SKEW_MS,
) -> TrailVerification:
    """Walk the whole trail in pages (bounded memory), calling `each` per entry; hold it to `seal`.

    Without a seal only the chain is checked, and only from the genesis: a trail whose history was replaced
    by a forged one that starts at the genesis passes, which is why the operator's seal exists.
    """
    if seal is not None and seal.breach:
        return TrailVerification(False, 0, False, f"the operator recorded a breach: {seal.breach}", seal.breach_id)
    if seal is not None and (breach := check_info(seal, info, now_ms, skew_ms)):
        return TrailVerification(False, 0, False, breach.reason, breach.entry_id or None)
    checked, unsealed, reached = 0, 0, seal is None or not seal.head
    prev: str | None = None
    start = "-"
    while True:
        page = read(start, "+", _PAGE)
        for entry_id, raw in page:
            link, stored = raw.get("prev", ""), raw.get("h", "")
            fault = None
            if prev is None:
                # the oldest entry: from the genesis, or where the operator's sealed trims left the trail
                sealed_start = seal is not None and seal.first == entry_id
                if link != GENESIS and not sealed_start:
                    fault = "the oldest entry links to neither the genesis nor the sealed start"
            elif link != prev:
                fault = "does not link to the entry before it: an entry was removed or reordered"
            if fault is None and chain_hash(link, {k: v for k, v in raw.items() if k not in ("prev", "h")}) != stored:
                fault = "its hash does not match its fields: the entry was edited"
            if fault is None and entry_ms(entry_id) > now_ms + skew_ms:
                fault = "its id is ahead of the server clock"
            if fault is None and seal is not None and entry_id == seal.head:
                if stored != seal.head_h:
                    fault = "the sealed head was changed"
                reached = True
            elif fault is None and seal is not None and seal.head and entry_key(entry_id) > entry_key(seal.head):
                if not reached:
                    fault = "the sealed head is missing"
                unsealed += 1
            if fault is not None:
                return TrailVerification(False, checked, False, fault, entry_id)
            if each is not None:
                each(entry_id, raw)
            prev, checked = stored, checked + 1
        if len(page) < _PAGE:
            break
        start = "(" + page[-1][0]
    if not reached:
        return TrailVerification(False, checked, False, "the sealed head is missing", seal.head if seal else None)
    return TrailVerification(True, checked, seal is not None and bool(seal.head), None, None, unsealed)
