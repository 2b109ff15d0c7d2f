"""The compliance report job: the seed's report (per-framework status, audit summary by action, unique actors
and subjects, period, recommendations) plus evidence measured on the live data with the tenant's own
credentials: keys without a TTL, content older than the maximum, plaintext where encryption is required, and
the audit trail's integrity. The JSON and a Markdown summary are recorded on the store; the operator publishes
them as the ConfigMap `<tenant>-compliance-report` and a summary in the tenant's status. (ACL drift is checked by
the operator itself on every pass, as admin: a tenant user cannot read ACL rules.)
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

from memory_client.audit import verify_entries
from memory_jobs.env import JobEnv

__all__ = ["Check", "build_report", "render_markdown", "run_report"]

DAY_MS = 86_400_000
SAMPLE_ENTRIES = 20  # per stream, for the plaintext check
AUDIT_PAGE = 1000

# Which checks each framework cares about (the evidence a reviewer of that framework would ask for).
FRAMEWORK_CHECKS = {
    "GDPR": ("retention", "ttl", "audit_integrity"),
    "HIPAA": ("encryption", "acl", "audit_integrity"),
    "SOX": ("acl", "audit_integrity"),
    "PCI_DSS": ("retention", "encryption", "acl", "audit_integrity"),
}
DRIFT_ACTION = "acl.drift_repaired"  # appended by the operator when it restores a tenant user's rules
RECOMMENDATIONS = {
    "retention": "Run the retention job (kubectl create job --from=cronjob/<tenant>-memory-retention) and check "
    "that agents use the library, which trims on every append.",
    "ttl": "Keys without a TTL were written outside the library; write through memory_client or set a TTL.",
    "encryption": "Plaintext values exist although encryption is required: re-write them through the library "
    "with the tenant keyring (MEMORY_KEYRING).",
    "acl": "ACL rules of the tenant's users were changed behind the operator (it restored them): find out who "
    "holds admin access to the store and why.",
    "audit_integrity": "The audit trail does not verify: restore it from backup and investigate who had admin "
    "access to the store; tenant users cannot delete or edit it.",
}


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    count: int
    message: str


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _data_keys(client: redis.Redis, env: JobEnv) -> Iterator[str]:
    for key in client.hscan_iter(env.sizes_key, count=500):
        yield _text(key[0] if isinstance(key, tuple) else key)


def _measure(client: redis.Redis, env: JobEnv, now_ms: int) -> dict[str, int]:
    """Walk the library's index of data keys: TTLs, entries past the maximum, plaintext values."""
    counts = Counter(data_keys=0, keys_without_ttl=0, content_older_than_allowed=0, plaintext_values=0)
    cutoff = None if env.retention_days is None else now_ms - env.retention_days * DAY_MS
    for key in _data_keys(client, env):
        kind = _text(client.type(key))
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
                value = fields.get(b"m", fields.get("m"))
                if isinstance(value, bytes) and value[:1] != b"\x01":  # memory_client.crypto: 1 = sealed
                    counts["plaintext_values"] += 1
    return dict(counts)


def _audit(client: redis.Redis, env: JobEnv, now_ms: int) -> dict[str, Any]:
    entries: list[tuple[str, dict[str, str]]] = []
    start = "-"
    while True:
        page = cast(list[tuple[Any, dict[Any, Any]]], client.xrange(env.audit_key, start, "+", count=AUDIT_PAGE))
        for entry_id, fields in page:
            entries.append((_text(entry_id), {_text(k): _text(v) for k, v in fields.items()}))
        if len(page) < AUDIT_PAGE:
            break
        start = "(" + entries[-1][0]
    actions = Counter(f.get("action", "?") for _, f in entries)
    oldest_ms = int(entries[0][0].split("-")[0]) if entries else None
    # Trimmed by the operator past the audit minimum, the trail starts at a link, not the genesis: accept that
    # start as the anchor, but only if it is at least as old as the minimum (else entries went too early).
    anchor = entries[0][1].get("prev", "") if entries else ""
    verification = verify_entries(entries, anchor=anchor)
    # The operator trims only past the audit minimum (and never without one): any other missing head means
    # entries were removed by someone else, e.g. an XADD with MAXLEN, which no ACL rule can forbid.
    early = not verification.from_genesis and (
        env.audit_retention_days is None
        or (oldest_ms is not None and oldest_ms > now_ms - env.audit_retention_days * DAY_MS)
    )
    return {
        "events": len(entries),
        "byAction": dict(sorted(actions.items())),
        "uniqueActors": len({f.get("actor") for _, f in entries if f.get("actor")}),
        "uniqueSubjects": len({f.get("subject") for _, f in entries if f.get("subject")}),
        "oldestEventAt": _iso(oldest_ms) if oldest_ms is not None else None,
        "integrity": {
            "ok": verification.ok and not early,
            "checked": verification.checked,
            "fromGenesis": verification.from_genesis,
            "firstBad": verification.first_bad,
            "reason": "entries younger than the audit minimum were removed" if early else verification.reason,
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


def run_report(client: redis.Redis, env: JobEnv, now_ms: int | None = None) -> dict[str, str]:
    now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    report = build_report(env, _measure(client, env, now_ms), _audit(client, env, now_ms), now_ms)
    return {
        "report": json.dumps(report, sort_keys=True, separators=(",", ":")),
        "markdown": render_markdown(report),
        "score": str(report["score"]),
        "violations": str(len(report["violations"])),
    }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
