"""The compliance report job: the seed's report (per-framework status, audit summary by action, unique actors
and subjects, period, recommendations) plus evidence measured on the live data with the jobs' own credentials
(read-only on the tenant's data): keys without a TTL, content older than the maximum, plaintext where encryption
is required, and the audit trail's integrity, held to the operator's seal (memory_client.seal) and walked in
pages, so memory stays bounded however long the trail. The JSON and a Markdown summary are recorded where only
the jobs' user may write; the operator publishes them as the ConfigMap `<tenant>-compliance-report`, a summary in
the tenant's status and its `Compliant` condition. (ACL drift is checked by the operator itself on every pass, as
admin: a tenant user cannot read ACL rules.)
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import redis

from memory_client.contract import DAY_MS, DRIFT_ACTION, JOB_FACTS, MESSAGE_FIELD, as_text, is_sealed
from memory_client.seal import Seal, TrailInfo, verify_trail
from memory_jobs.env import JobEnv

__all__ = ["Check", "audit_summary", "build_report", "render_markdown", "run_report"]

_MESSAGE = MESSAGE_FIELD.encode()
SAMPLE_ENTRIES = 20  # per stream, for the plaintext check
AUDIT_PAGE = 1000

# Which checks each framework cares about (the evidence a reviewer of that framework would ask for).
FRAMEWORK_CHECKS = {
    "GDPR": ("retention", "ttl", "audit_integrity"),
    "HIPAA": ("encryption", "acl", "audit_integrity"),
    "SOX": ("acl", "audit_integrity"),
    "PCI_DSS": ("retention", "encryption", "acl", "audit_integrity"),
}
RECOMMENDATIONS = {
    "retention": "Run the retention job (kubectl create job --from=cronjob/<tenant>-memory-retention) and check "
    "that agents use the library, which trims on every append.",
    "ttl": "Keys without a TTL were written outside the library; write through memory_client or set a TTL.",
    "encryption": "Plaintext values exist although encryption is required: re-write them through the library "
    "with the tenant keyring (MEMORY_KEYRING).",
    "acl": "ACL rules of the tenant's users were changed behind the operator (it restored them): find out who "
    "holds admin access to the store and why.",
    "audit_integrity": "The audit trail does not hold to the operator's seal: find out who wrote to it with "
    "which credentials (XADD with MAXLEN/MINID, far-future ids) and restore it from backup; see the tenant's "
    "status.audit and its AuditTrailTampered Event.",
}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    count: int
    message: str


def _data_keys(client: redis.Redis, env: JobEnv) -> Iterator[str]:
    for key in client.hscan_iter(env.sizes_key, count=500):
        yield as_text(key[0] if isinstance(key, tuple) else key)


def _measure(client: redis.Redis, env: JobEnv, now_ms: int) -> dict[str, int]:
    """Walk the library's index of data keys: TTLs, entries past the maximum, plaintext values."""
    counts = Counter(data_keys=0, keys_without_ttl=0, content_older_than_allowed=0, plaintext_values=0)
    cutoff = None if env.retention_days is None else now_ms - env.retention_days * DAY_MS
    for key in _data_keys(client, env):
        kind = as_text(client.type(key))
        if kind == "none":
            continue
        counts["data_keys"] += 1
        if env.retention_days is not None and client.pttl(key) == -1:
            counts["keys_without_ttl"] += 1
        if kind != "stream":
            continue
        if cutoff is not None:
            counts["content_older_than_allowed"] += len(
                client.xrange(key, "-", f"{cutoff - 1}", count=AUDIT_PAGE) or []
            )
        if env.encryption_required:
            entries = cast(list[tuple[Any, dict[Any, Any]]], client.xrevrange(key, count=SAMPLE_ENTRIES))
            for _, fields in entries:
                value = fields.get(_MESSAGE, fields.get(MESSAGE_FIELD))
                if isinstance(value, bytes) and not is_sealed(value):
                    counts["plaintext_values"] += 1
    return dict(counts)


def _decoded(entries: list[tuple[Any, dict[Any, Any]]]) -> list[tuple[str, dict[str, str]]]:
    return [(as_text(i), {as_text(k): as_text(v) for k, v in fields.items()}) for i, fields in entries]


def _trail_info(client: redis.Redis, key: str) -> TrailInfo | None:
    try:
        return TrailInfo.from_xinfo(cast(dict[Any, Any], client.xinfo_stream(key)))
    except redis.ResponseError as exc:
        if "no such key" in str(exc).lower():
            return None
        raise


def _seal(client: redis.Redis, env: JobEnv) -> Seal | None:
    """The operator's seal as stored (only the admin writes it; its MAC is the operator's to check)."""
    raw = cast(dict[Any, Any], client.hgetall(env.seal_key))
    try:
        return Seal.from_fields({k: v for k, v in raw.items() if as_text(k) != "mac"}) if raw else None
    except ValueError:
        return None


class _Summary:
    """What the report tells of the trail, gathered entry by entry (a counter per action, sets of short ids)."""

    def __init__(self) -> None:
        self.events = 0
        self.oldest_ms: int | None = None
        self.actions: Counter[str] = Counter()
        self.actors: set[str] = set()
        self.subjects: set[int] = set()  # hashes, not the pseudonyms: a third of the memory, collisions negligible

    def __call__(self, entry_id: str, fields: Any) -> None:
        if self.oldest_ms is None:
            self.oldest_ms = int(entry_id.partition("-")[0])
        self.events += 1
        self.actions[fields.get("action", "?")] += 1
        if actor := fields.get("actor"):
            self.actors.add(actor)
        if subject := fields.get("subject"):
            self.subjects.add(hash(subject))


def audit_summary(client: redis.Redis, env: JobEnv, now_ms: int) -> dict[str, Any]:
    """The trail in brief and its integrity, walked against the operator's seal (the report's audit section;
    `kubectl agentmemory verify-audit` runs it too)."""
    seal = _seal(client, env)
    info = _trail_info(client, env.audit_key)

    def read(start: str, end: str, count: int) -> list[tuple[str, dict[str, str]]]:
        return _decoded(cast(list[tuple[Any, dict[Any, Any]]], client.xrange(env.audit_key, start, end, count=count)))

    summary = _Summary()
    verification = verify_trail(read, info, seal, now_ms, summary)
    reason = verification.reason
    if seal is None and verification.ok:
        reason = "the operator has not sealed this trail (yet): only the chain from the genesis was checked"
    return {
        "events": summary.events,
        "byAction": dict(sorted(summary.actions.items())),
        "uniqueActors": len(summary.actors),
        "uniqueSubjects": len(summary.subjects),
        "oldestEventAt": _iso(summary.oldest_ms) if summary.oldest_ms is not None else None,
        "integrity": {
            "ok": verification.ok and seal is not None,
            "checked": verification.checked,
            "sealed": verification.sealed,
            "unsealed": verification.unsealed,
            "sealedAt": _iso(seal.sealed_at) if seal is not None and seal.sealed_at else None,
            "firstBad": verification.first_bad,
            "reason": reason,
        },
    }


def build_report(env: JobEnv, measured: dict[str, int], audit: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """Pure: the report document from what was measured."""
    checks = [
        Check("retention", measured["content_older_than_allowed"] == 0, measured["content_older_than_allowed"],
              "conversation entries older than the maximum"),
        Check("ttl", measured["keys_without_ttl"] == 0, measured["keys_without_ttl"], "data keys without a TTL"),
        Check("encryption", measured["plaintext_values"] == 0, measured["plaintext_values"],
              "plaintext values where encryption is required (sampled)"),
        Check("acl", audit["byAction"].get(DRIFT_ACTION, 0) == 0, audit["byAction"].get(DRIFT_ACTION, 0),
              "ACL users whose rules drifted from what the operator set (restored; see the audit trail)"),
        Check("audit_integrity", bool(audit["integrity"]["ok"]), 0 if audit["integrity"]["ok"] else 1,
              audit["integrity"]["reason"] or "the audit trail verifies"),
    ]  # fmt: skip
    failed = [c for c in checks if not c.passed]
    frameworks = {
        name: {
            "status": "compliant" if all(c.passed for c in checks if c.name in wanted) else "violations",
            "checks": list(wanted),
        }
        for name, wanted in FRAMEWORK_CHECKS.items()
        if name in env.frameworks
    }
    return {
        "tenant": env.tenant_id,
        "generatedAt": _iso(now_ms),
        "period": {"from": audit["oldestEventAt"], "to": _iso(now_ms)},
        "policy": {
            "frameworks": list(env.frameworks),
            "messageRetentionDays": env.retention_days,
            "auditRetentionDays": env.audit_retention_days,
            "encryptionRequired": env.encryption_required,
        },
        "frameworks": frameworks,
        "audit": audit,
        "evidence": measured,
        "checks": [c.__dict__ for c in checks],
        "violations": [{"check": c.name, "count": c.count, "message": c.message} for c in failed],
        "score": round(100 * (len(checks) - len(failed)) / len(checks)),
        "recommendations": [RECOMMENDATIONS[c.name] for c in failed],
    }


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Compliance report: {report['tenant']}",
        "",
        f"Generated {report['generatedAt']}; score **{report['score']}/100**; "
        f"{len(report['violations'])} violation(s).",
        "",
        "| check | result | count | what |",
        "| --- | --- | --- | --- |",
    ]
    for check in report["checks"]:
        verdict = "pass" if check["passed"] else "**FAIL**"
        lines.append(f"| {check['name']} | {verdict} | {check['count']} | {check['message']} |")
    audit = report["audit"]
    lines += ["", f"Audit: {audit['events']} events, {audit['uniqueActors']} actors, {audit['uniqueSubjects']} "
              f"subjects; by action: {json.dumps(audit['byAction'])}."]  # fmt: skip
    for name, framework in report["frameworks"].items():
        lines.append(f"- {name}: {framework['status']}")
    if report["recommendations"]:
        lines += ["", "## Recommendations", *(f"- {r}" for r in report["recommendations"])]
    return "\n".join(lines) + "\n"


def _with_survey(client: redis.Redis, env: JobEnv, measured: dict[str, int]) -> dict[str, int]:
    """The operator's hourly survey of every key under the prefix (`<results>facts`), merged in: it also sees keys
    written around the library's index, which the jobs' user cannot enumerate (no SCAN)."""
    facts = {as_text(k): as_text(v) for k, v in cast(dict[Any, Any], client.hgetall(env.result_key(JOB_FACTS))).items()}
    if not facts.get("at", "").isdigit():
        return measured
    surveyed = {k: int(v) for k, v in facts.items() if v.isdigit()}
    merged = dict(measured)
    merged["keys_without_ttl"] = max(measured["keys_without_ttl"], surveyed.get("keys_without_ttl", 0))
    merged["plaintext_values"] = max(measured["plaintext_values"], surveyed.get("plaintext_values", 0))
    old = surveyed.get("streams_with_old_content", 0)
    merged["content_older_than_allowed"] = max(measured["content_older_than_allowed"], old)
    merged["surveyed_keys"] = surveyed.get("keys", 0)
    merged["surveyed_at_ms"] = surveyed["at"]
    return merged


def run_report(client: redis.Redis, env: JobEnv, now_ms: int | None = None) -> dict[str, str]:
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    measured = _with_survey(client, env, _measure(client, env, now_ms))
    report = build_report(env, measured, audit_summary(client, env, now_ms), now_ms)
    return {
        "report": json.dumps(report, sort_keys=True, separators=(",", ":")),
        "markdown": render_markdown(report),
        "score": str(report["score"]),
        "violations": str(len(report["violations"])),
    }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
