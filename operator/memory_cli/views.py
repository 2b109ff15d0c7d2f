"""Pure views: what `kubectl agentmemory status` shows, from the objects read (no I/O here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from memory_client.contract import JOB_REPORT, JOB_RETENTION
from memory_operator.api.v1alpha1.memorytenant import CONFIRM_DELETION_ANNOTATION
from memory_operator.builders.cronjobs import cronjob_name, report_configmap_name
from memory_operator.builders.meta import credentials_secret_name, job_credentials_secret_name, keys_secret_name

__all__ = ["healthy", "is_ready", "render_table", "render_tree", "tenant_document"]

Obj = Mapping[str, Any]


def _conditions(obj: Obj) -> dict[str, dict[str, Any]]:
    return {c["type"]: dict(c) for c in (obj.get("status") or {}).get("conditions") or () if "type" in c}


def _brief(condition: Mapping[str, Any] | None) -> dict[str, Any]:
    if not condition:
        return {"status": "Unknown", "reason": "", "message": ""}
    return {key: condition.get(key, "") for key in ("status", "reason", "message")}


def tenant_document(
    tenant: Obj, store: Obj | None, secret_names: Iterable[str], cronjobs: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Everything `status TENANT` shows, as data (`-o json|yaml` prints this; the tree renders it)."""
    meta, spec, status = tenant["metadata"], tenant.get("spec") or {}, tenant.get("status") or {}
    name, present = meta["name"], set(secret_names)
    conditions = _conditions(tenant)
    agents = [user["agent"] for user in status.get("users") or () if user.get("agent")]
    wanted = [credentials_secret_name(name), *(credentials_secret_name(name, a) for a in agents)]
    wanted += [job_credentials_secret_name(name)] + ([keys_secret_name(name)] if status.get("encryption") else [])
    runs = {run.get("job"): run for run in status.get("jobs") or ()}
    jobs = []
    for job in (JOB_RETENTION, JOB_REPORT):
        cron = cronjob_name(name, job)
        jobs.append({"job": job, "cronJob": cron, **dict(cronjobs.get(cron) or {"missing": True}),
                     "lastRun": runs.get(job)})  # fmt: skip
    usage, quota = status.get("usage") or {}, spec.get("quota") or {}
    store_status = (store or {}).get("status") or {}
    return {
        "namespace": meta.get("namespace"),
        "name": name,
        "ready": _brief(conditions.get("Ready")),
        "compliant": _brief(conditions.get("Compliant")),
        "isolation": spec.get("isolation", "moderate"),
        "deletion": {
            "policy": spec.get("deletionPolicy", "Retain"),
            "confirmed": (meta.get("annotations") or {}).get(CONFIRM_DELETION_ANNOTATION) == name,
        },
        "keyPrefix": status.get("keyPrefix"),
        "store": {
            "name": status.get("store") or (spec.get("storeRef") or {}).get("name"),
            "found": store is not None,
            "mode": ((store or {}).get("spec") or {}).get("mode", "Standalone"),
            "ready": _brief(_conditions(store or {}).get("Ready")),
            "server": store_status.get("server"),
            "nodes": store_status.get("nodes") or [],
        },
        "users": [
            {"name": u.get("name"), "agent": u.get("agent"), "secret": u.get("secretName")}
            for u in status.get("users") or ()
        ],
        "secrets": [{"name": secret, "present": secret in present} for secret in wanted],
        "jobs": jobs,
        "usage": {
            "keys": usage.get("keys"),
            "memoryBytes": usage.get("memoryBytes"),
            "measuredAt": usage.get("measuredAt"),
            "quota": dict(quota),
        },
        "compliance": {**dict(status.get("compliance") or {}), "configMap": report_configmap_name(name)},
        "audit": status.get("audit") or {},
        "conditions": list(conditions.values()),
    }


def is_ready(tenant: Obj) -> bool:
    """The tenant's Ready condition is True."""
    return bool(_brief(_conditions(tenant).get("Ready"))["status"] == "True")


def healthy(document: Mapping[str, Any]) -> bool:
    """Ready, not found non-compliant, every Secret in place: what exit code 0 of `status` means."""
    return (
        document["ready"]["status"] == "True"
        and document["compliant"]["status"] != "False"
        and all(secret["present"] for secret in document["secrets"])
    )


def _bytes(value: Any) -> str:
    if not isinstance(value, int):
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def _condition_line(label: str, brief: Mapping[str, Any]) -> str:
    reason = f" ({brief['reason']})" if brief.get("reason") else ""
    message = f": {brief['message']}" if brief.get("message") else ""
    return f"{label} {brief['status']}{reason}{message}"


def _tree(title: str, branches: list[tuple[str, list[str]]]) -> list[str]:
    lines = [title]
    for index, (head, leaves) in enumerate(branches):
        last = index == len(branches) - 1
        lines.append(f"{'└─' if last else '├─'} {head}")
        for leaf_index, leaf in enumerate(leaves):
            lines.append(f"{'   ' if last else '│  '}{'└─' if leaf_index == len(leaves) - 1 else '├─'} {leaf}")
    return lines


def render_tree(doc: Mapping[str, Any]) -> str:
    """`status TENANT` for people: the tenant and what it is made of, one branch per part."""
    store = doc["store"]
    server = store.get("server") or {}
    engine = f", {server.get('engine')} {server.get('version')}" if server else ""
    store_head = f"MemoryStore {store['name']} ({store['mode']}{engine}): " + (
        _condition_line("Ready", store["ready"]) if store["found"] else "NOT FOUND"
    )
    nodes = [
        f"{n.get('address')} {n.get('role')} shard {n.get('shard')} {n.get('health')}"
        + ("" if n.get("converged", True) else f", missing {n.get('missingUsers')} user(s)")
        for n in store["nodes"]
    ]
    users = [f"{u['name']}" + (f" (agent {u['agent']})" if u.get("agent") else "") for u in doc["users"]]
    secrets = [f"{s['name']}: {'present' if s['present'] else 'MISSING'}" for s in doc["secrets"]]
    jobs = []
    for job in doc["jobs"]:
        if job.get("missing"):
            jobs.append(f"{job['job']}: CronJob {job['cronJob']} MISSING")
            continue
        run = job.get("lastRun") or {}
        last = (
            f"last run {run.get('status')} at {run.get('finishedAt') or run.get('startedAt')}" if run else "no run yet"
        )
        jobs.append(f"{job['job']}: '{job['schedule']}' {job.get('timeZone') or 'zone of the cluster'}, {last}")
    usage = doc["usage"]
    quota = usage["quota"]
    usage_lines = [
        f"keys {usage['keys'] if usage['keys'] is not None else '-'}"
        + (f" of {quota['keys']}" if "keys" in quota else ""),
        f"memory {_bytes(usage['memoryBytes'])}" + (f" of {quota['memory']}" if "memory" in quota else ""),
    ]
    compliance = doc["compliance"]
    compliance_lines = [_condition_line("Compliant", doc["compliant"])]
    if "score" in compliance:
        compliance_lines.append(
            f"score {compliance['score']}/100, {compliance.get('violations', 0)} violation(s), "
            f"report of {compliance.get('generatedAt')} in ConfigMap {compliance['configMap']}"
        )
    audit = doc["audit"]
    if audit.get("breach"):
        compliance_lines.append(f"audit trail BREACH: {audit['breach']}")
    elif audit:
        compliance_lines.append(f"audit trail: {audit.get('verified', 0)} entries verified against the seal")
    deletion = doc["deletion"]
    on_delete = "revokes access, keeps the data and keyring (Retain)"
    if deletion["policy"] == "Delete" and deletion["confirmed"]:
        on_delete = "revokes access, deletes the data and keyring (confirmed)"
    elif deletion["policy"] == "Delete":
        on_delete = f"revokes access, KEEPS the data: Delete is not confirmed by {CONFIRM_DELETION_ANNOTATION}"
    branches = [
        (store_head, nodes),
        (f"ACL users ({len(users)})", users),
        (f"Secrets ({len(secrets)})", secrets),
        ("Jobs", jobs),
        ("Usage", usage_lines),
        ("Compliance", compliance_lines),
        ("Conditions", [_condition_line(c["type"], _brief(c)) for c in doc["conditions"]]),
    ]
    branches.insert(-1, (f"On deletion: {on_delete}", []))
    title = f"MemoryTenant {doc['namespace']}/{doc['name']} ({doc['isolation']}): " + _condition_line(
        "Ready", doc["ready"]
    )
    return "\n".join(_tree(title, branches))


def render_table(tenants: Iterable[Obj]) -> str:
    """`status` without a tenant: one line per tenant."""
    rows = [("NAMESPACE", "NAME", "READY", "REASON", "COMPLIANT", "SCORE", "KEYS", "MEMORY", "STORE")]
    for tenant in tenants:
        status = tenant.get("status") or {}
        conditions = _conditions(tenant)
        ready, compliant = _brief(conditions.get("Ready")), _brief(conditions.get("Compliant"))
        usage, compliance = status.get("usage") or {}, status.get("compliance") or {}
        rows.append((
            str(tenant["metadata"].get("namespace")), str(tenant["metadata"]["name"]), ready["status"],
            ready["reason"] or "-", compliant["status"], str(compliance.get("score", "-")),
            str(usage.get("keys", "-")), _bytes(usage.get("memoryBytes")), str(status.get("store") or "-"),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)  # fmt: skip
