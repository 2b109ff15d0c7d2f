"""Each tenant pass seals the tenant's audit trail (memory_client.seal) and trims it past the audit minimum.

The seal's HMAC key is the operator's alone: Secret `agent-memory-seal` in its own namespace, minted once.
A breach found is kept in the seal and in status.audit (sticky), posted once as a Warning Event, and makes the
tenant's `Compliant` condition False.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

from memory_client import contract
from memory_client.seal import Breach, Seal, advance, entry_key, entry_ms
from memory_operator.api.conditions import Condition
from memory_operator.api.v1alpha1 import MemoryTenant, Requirements
from memory_operator.api.v1alpha1.memorytenant import AuditSeal, ComplianceSummary
from memory_operator.builders import acl
from memory_operator.builders.meta import carries_our_marks
from memory_operator.builders.secrets import ROLE_SEAL, SEAL_KEY, SEAL_SECRET, seal_secret, secret_value
from memory_operator.clients.kube import AlreadyExists
from memory_operator.clients.redis_admin import RedisAdmin
from memory_operator.deps import Deps
from memory_operator.errors import NameConflict
from memory_operator.reconcilers.common import Event, condition

__all__ = [
    "MAX_SEAL_ENTRIES",
    "SealPass",
    "audit_status",
    "compliant_condition",
    "seal_key",
    "seal_trail",
    "violations_message",
]

#: Entries verified per pass at most; a trail that grew more continues from there on the next pass.
MAX_SEAL_ENTRIES: Final = 100_000
_KEY_BYTES: Final = 32
_lock = threading.Lock()


def seal_key(deps: Deps) -> bytes:
    """The HMAC key of seals: read from (or, the first time, created create-only in) the operator's namespace."""
    with _lock:
        if deps.seal_key is not None:
            return deps.seal_key
        for _ in range(2):
            found = deps.kube.get_secret(deps.namespace, SEAL_SECRET)
            if found is not None:
                if not carries_our_marks(found, None, ROLE_SEAL):
                    raise NameConflict(
                        f"Secret {deps.namespace}/{SEAL_SECRET} exists and was not written by agent-memory-operator; "
                        "audit seals need it: remove that Secret"
                    )
                try:
                    key = base64.b64decode(secret_value(found, SEAL_KEY) or "", validate=True)
                except (ValueError, binascii.Error):
                    key = b""
                if len(key) != _KEY_BYTES:
                    raise NameConflict(f"Secret {deps.namespace}/{SEAL_SECRET} has no 256-bit {SEAL_KEY}")
                deps.seal_key = key
                return key
            try:
                deps.kube.create_secret(seal_secret(deps.namespace, secrets.token_bytes(_KEY_BYTES)))
            except AlreadyExists:  # another replica minted it meanwhile: use that one
                continue
        raise NameConflict(f"Secret {deps.namespace}/{SEAL_SECRET} keeps changing under the operator; will retry")


@dataclass(frozen=True)
class SealPass:
    seal: Seal
    trimmed: int
    events: list[Event]


def seal_trail(
    tenant: MemoryTenant,
    layout: acl.Layout,
    policy: Requirements,
    admin: RedisAdmin,
    deps: Deps,
    recorded: AuditSeal | None,
) -> SealPass:
    """Verify what was appended since the last seal, trim past the audit minimum (never the sealed head, and
    recorded in the seal before the trim runs), and write the new seal when it moved.

    `recorded` is the seal as status last showed it: a seal gone from the store while status remembers one
    is itself a breach (someone with admin access deleted it).
    """
    stream, where = layout.audit, layout.seal
    key = seal_key(deps)
    raw, now_ms, info = admin.read_trail(stream, where)
    stored: Seal | None
    if raw:
        try:
            seal = stored = Seal.open(raw, key)
        except ValueError as exc:  # altered or unreadable: start again from what is there, breach on record
            stored = None
            seal = Seal(stream, sealed_at=now_ms).broken(Breach(str(exc)), now_ms)
    elif recorded is not None and recorded.sealed_at:
        stored = None
        breach = Breach("the seal was deleted from the store (admin access)")
        seal = Seal(stream, sealed_at=now_ms).broken(breach, now_ms)
    else:
        stored, seal = None, Seal(stream)
    if stored is None and recorded is not None and recorded.breach:  # a breach on record stays on record
        seal = replace(seal, breach=recorded.breach, breach_id=recorded.breach_entry, breach_at=recorded.breach_at)
    head = admin.stream_entry(stream, seal.head) if seal.head and info is not None else None
    newer = admin.stream_after(stream, seal.head or None, MAX_SEAL_ENTRIES) if info is not None else iter(())
    new = advance(seal, info, head, newer, now_ms)
    trimmed = 0
    if policy.audit_retention_days is not None and info is not None and new.head and not new.breach:
        new, trimmed = _trim(admin, stream, where, key, new, now_ms - policy.audit_retention_days * contract.DAY_MS)
    if stored is None or _moved(stored, new):
        admin.write_hash(where, new.signed(key))
    events = []
    if new.breach and not (stored and stored.breach) and not (recorded and recorded.breach):
        where_found = f" at entry {new.breach_id}" if new.breach_id else ""
        events.append(Event("AuditTrailTampered", f"audit trail {stream}: {new.breach}{where_found}", "Warning"))
    return SealPass(new, trimmed, events)


def _trim(admin: RedisAdmin, stream: str, where: str, key: bytes, seal: Seal, cutoff_ms: int) -> tuple[Seal, int]:
    """Trim entries older than `cutoff_ms`, keeping the sealed head whatever its age: the seal records the
    oldest entry the trim will leave before the trim runs, so a crash between the two is no false alarm."""
    if entry_ms(seal.first) >= cutoff_ms:
        return seal, 0
    target = admin.first_entry_from(stream, cutoff_ms)
    if target is None or entry_key(target) > entry_key(seal.head):
        target = seal.head
    if target == seal.first:
        return seal, 0
    admin.write_hash(where, replace(seal, next_first=target).signed(key))
    trimmed = admin.trim_stream_to(stream, target)
    after = admin.trail_info(stream)
    if after is None or after.first_id != target:
        breach = Breach("the trail changed while the operator trimmed it", after.first_id if after else "")
        return seal.broken(breach, seal.sealed_at), trimmed
    return replace(seal, first=target, added=after.added, trimmed=after.added - after.length), trimmed


def _moved(old: Seal, new: Seal) -> bool:
    """Whether anything but the time changed: a pass that finds nothing new writes nothing."""
    return replace(old, sealed_at=0) != replace(new, sealed_at=0)


def audit_status(seal: Seal) -> AuditSeal:
    return AuditSeal(
        stream=seal.stream,
        first=seal.first,
        head=seal.head,
        head_hash=seal.head_h,
        entries_added=seal.added,
        trimmed=seal.trimmed,
        verified=seal.verified,
        sealed_at=seal.sealed_at,
        breach=seal.breach,
        breach_entry=seal.breach_id,
        breach_at=seal.breach_at,
    )


def violations_message(report: ComplianceSummary, failed: list[str]) -> str:
    """What a report with violations found (the Compliant message and the ComplianceViolations Event)."""
    checks = ", ".join(failed) or f"{report.violations} check(s)"
    return f"report of {report.generated_at}: score {report.score}, failed: {checks}"


def compliant_condition(
    seal: Seal, report: ComplianceSummary | None, failed: list[str], generation: int, now: datetime
) -> Condition:
    """False on a breach of the trail or a report with violations; Unknown until a first report exists."""
    if seal.breach:
        found = datetime.fromtimestamp(seal.breach_at / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entry = f" (entry {seal.breach_id})" if seal.breach_id else ""
        message = f"audit trail tampered: {seal.breach}{entry}, found {found}"
        return condition("Compliant", "False", "AuditTrailTampered", message, generation, now)
    if report is None:
        return condition("Compliant", "Unknown", "NoReportYet", "no compliance report has run yet", generation, now)
    if report.violations:
        return condition("Compliant", "False", "Violations", violations_message(report, failed), generation, now)
    message = f"report of {report.generated_at}: every check passed; the audit trail is sealed"
    return condition("Compliant", "True", "NoViolations", message, generation, now)
