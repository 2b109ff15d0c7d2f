"""The one-command demo: what a platform engineer sees when tenants are declared, and proof the isolation holds."""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import redis

from memory_sandbox.sandbox import Sandbox, SandboxError

__all__ = ["DEFAULT_SAMPLES", "run_demo"]

DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "samples"

Say = Callable[[str], None]


def _show(sandbox: Sandbox, say: Say, *args: str) -> str:
    say(f"\n$ {shlex.join(['kubectl', *args])}")  # pastes into a shell as shown
    out = sandbox.kubectl(*args).stdout.rstrip()
    say(out)
    return out


def _credentials(sandbox: Sandbox, namespace: str, secret: str) -> dict[str, str]:
    raw = json.loads(sandbox.kubectl("get", "secret", secret, "-n", namespace, "-o", "json").stdout)
    return {k: base64.b64decode(v).decode() for k, v in raw["data"].items()}


def _attempt(say: Say, label: str, action: Callable[[], object]) -> bool:
    """Run one Redis call as a tenant would and report it; True when the server allowed it."""
    try:
        result = action()
    except redis.exceptions.NoPermissionError:
        say(f"  refused  {label:60} -> NOPERM")
        return False
    say(f"  allowed  {label:60} -> {result!r}")
    return True


def prove_isolation(sandbox: Sandbox, say: Say) -> bool:
    """Use the agents' own Secrets: inside their namespace everything works, outside nothing does."""
    say("\n# The credentials an agent gets through envFrom work in its namespace and nowhere else:")
    triage = _credentials(sandbox, "team-support", "helpdesk-triage-memory-credentials")
    intake = _credentials(sandbox, "team-research", "clinical-notes-intake-memory-credentials")
    say(f"  helpdesk/triage logs in as {triage['REDIS_USERNAME']} (prefix {triage['MEMORY_KEY_PREFIX']})")
    client = redis.Redis.from_url(triage["REDIS_URL"], decode_responses=True)
    mine = f"{triage['MEMORY_KEY_PREFIX']}conversation:demo"
    theirs = f"{intake['MEMORY_KEY_PREFIX']}agent:intake:notes"
    results = [
        _attempt(say, f"RPUSH {mine}", lambda: client.rpush(mine, "hello from triage")) is True,
        _attempt(say, f"LRANGE {mine} 0 -1", lambda: client.lrange(mine, 0, -1)) is True,
        _attempt(say, f"GET {theirs}", lambda: client.get(theirs)) is False,
        _attempt(say, "SCAN 0", lambda: client.scan(0)) is False,
        _attempt(say, "FLUSHALL", client.flushall) is False,
        _attempt(say, "CONFIG GET *", lambda: client.config_get("*")) is False,
    ]
    say(f"\n  clinical-notes/intake (isolation strict) logs in as {intake['REDIS_USERNAME']}")
    strict = redis.Redis.from_url(intake["REDIS_URL"], decode_responses=True)
    own, shared = intake["MEMORY_AGENT_PREFIX"] + "notes", intake["MEMORY_SHARED_PREFIX"] + "case-42"
    other_agent = f"{intake['MEMORY_KEY_PREFIX']}agent:summarizer:draft"
    results += [
        _attempt(say, f"SET {own}", lambda: strict.set(own, "BP 120/80")) is True,
        _attempt(say, f"SET {shared}", lambda: strict.set(shared, "open")) is True,
        _attempt(say, f"GET {other_agent}", lambda: strict.get(other_agent)) is False,
    ]
    client.close()
    strict.close()
    ok = all(results)
    say("\n  isolation holds" if ok else "\n  ISOLATION BROKEN: an expected outcome did not happen")
    return ok


def agents_converse(sandbox: Sandbox, say: Say) -> bool:
    """Two agents of the helpdesk tenant share a conversation and a context through the agent library, each
    with its own Secret (plus the keyring Secret), as their Pods would through envFrom."""
    from memory_client import AgentMemory, ConflictError  # noqa: PLC0415 - the demo's only library user

    say("\n# Two agents talk through the agent library, each with its own Secret (masking + encryption + audit):")
    keys = _credentials(sandbox, "team-support", "helpdesk-memory-keys")
    agents = {a: {**_credentials(sandbox, "team-support", f"helpdesk-{a}-memory-credentials"), **keys}
              for a in ("triage", "responder")}  # fmt: skip
    with AgentMemory.from_env(agents["triage"]) as triage, AgentMemory.from_env(agents["responder"]) as responder:
        ticket = triage.conversation("ticket-4711", subject="customer-42", agent="shared")
        ticket.append("human", "I was charged twice, reach me at jane@example.com or +1 415 555 0100")
        ticket.append("ai", "Triage: duplicate charge; routing to billing.")
        reply = responder.conversation("ticket-4711", subject="customer-42", agent="shared")
        reply.append("ai", "Responder: refund of the duplicate charge approved.")
        for message in reply.last(10):
            say(f"  {message.role:>5}: {message.content}")
        plan = triage.shared_context("ticket-4711")
        version = plan.create({"status": "open"}).version
        responder.shared_context("ticket-4711").update({"status": "refund approved"}, expected_version=version)
        try:
            plan.update({"status": "closed"}, expected_version=version)  # triage's view is stale now
            conflict = False
        except ConflictError:
            conflict = True
        now = responder.shared_context("ticket-4711").get()
        say(f"  shared context: {now.data if now else None}; a stale update was "
            f"{'refused (ConflictError)' if conflict else 'ACCEPTED'}")  # fmt: skip
        first = cast(list[tuple[bytes, dict[bytes, bytes]]], sandbox.engine.admin_client().xrange(ticket.key, count=1))
        raw = first[0][1][b"m"]
        say(f"  what the store holds for the first message: {raw[:24]!r}... ({len(raw)} bytes, AES-256-GCM)")
        verification = triage.verify_audit()
        say(f"  audit trail: {verification.checked} hash-chained events, verified: {verification.ok}")
        masked = all("jane@example.com" not in m.content for m in reply.last(10))
    return conflict and verification.ok and masked and not raw.startswith(b"\x00")


def langgraph_resumes(sandbox: Sandbox, say: Say) -> bool:
    """A LangGraph agent (`memory_sandbox.langgraph_agent`) runs one turn per process with the triage agent's
    Secrets: the second process resumes the thread the first one checkpointed."""
    say("\n# A LangGraph agent, one process per turn: TenantCheckpointer resumes the thread, TenantStore remembers")
    env = {
        **os.environ,
        **_credentials(sandbox, "team-support", "helpdesk-triage-memory-credentials"),
        **_credentials(sandbox, "team-support", "helpdesk-memory-keys"),
    }
    turns = [("I was charged twice for order 1234", "Which card was charged?"), ("The Visa", "Refund started.")]
    messages: list[list[str]] = []
    for text, reply in turns:
        command = [sys.executable, "-m", "memory_sandbox.langgraph_agent", "ticket-4712", "customer-42", text, reply]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            say(f"  the agent failed: {done.stderr.strip().splitlines()[-1:]}")
            return False
        out = json.loads(done.stdout)
        messages = out["messages"]
        say(f"  process {len(messages) // 2}: the thread holds {len(messages)} messages; facts {out['facts']}")
    for role, content in messages:
        say(f"  {role:>5}: {content}")
    return [content for _, content in messages] == [x for turn in turns for x in turn]


def run_demo(sandbox: Sandbox, samples: Path, say: Say = print, *, timeout: float = 60.0) -> bool:
    """Apply the samples, wait for Ready, show the result, prove isolation. True when all of it held."""
    if not samples.is_dir():
        raise SandboxError(f"samples directory {samples} not found (pass --samples)")
    engine = (sandbox.engine.binary or Path("valkey-server")).name
    say(f"# Sandbox up: {engine} at {sandbox.engine.url} (pid {sandbox.engine.pid}), API server {sandbox.api.url},")
    say(f"# the operator as pid {sandbox.operator.pid if sandbox.operator else '-'} (log: {sandbox.operator_log})")
    _show(sandbox, say, "wait", "--for=condition=Ready", "memorystore/sandbox", f"--timeout={int(timeout)}s")
    _show(sandbox, say, "get", "memorystores")
    _show(sandbox, say, "apply", "-f", str(samples))
    started = time.monotonic()
    _show(sandbox, say, "wait", "--for=condition=Ready", "memorytenants", "--all", "-A", f"--timeout={int(timeout)}s")
    say(f"# all tenants Ready {time.monotonic() - started:.1f}s after apply")
    _show(sandbox, say, "get", "agentmemory", "-A")
    _show(
        sandbox, say, "get", "secrets", "-n", "team-support", "-l", "app.kubernetes.io/managed-by=agent-memory-operator"
    )
    _show(
        sandbox,
        say,
        "get",
        "memorytenant",
        "helpdesk",
        "-n",
        "team-support",
        "-o",
        'jsonpath={range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\\n"}{end}',
    )
    _show(sandbox, say, "get", "events", "-n", "team-support", "--field-selector", "involvedObject.name=helpdesk")
    say("\n# The effective policy of a tenant bound to HIPAA + GDPR (what its agents' library enforces):")
    _show(sandbox, say, "get", "memorytenant", "clinical-notes", "-n", "team-research", "-o",
          "jsonpath={.status.effectivePolicy}")  # fmt: skip
    isolated = prove_isolation(sandbox, say)
    conversed = agents_converse(sandbox, say)
    resumed = langgraph_resumes(sandbox, say)
    return show_report(sandbox, say) and conversed and isolated and resumed


def show_report(sandbox: Sandbox, say: Say, timeout: float = 60.0) -> bool:
    """Run the clinical tenant's compliance-report CronJob as a kubelet would and show what gets published."""
    from memory_client import AgentMemory  # noqa: PLC0415 - as in agents_converse

    say("\n# clinical-notes/intake records a visit through the library (HIPAA: masked, encrypted, reads audited):")
    intake = {
        **_credentials(sandbox, "team-research", "clinical-notes-intake-memory-credentials"),
        **_credentials(sandbox, "team-research", "clinical-notes-memory-keys"),
    }
    with AgentMemory.from_env(intake) as memory:
        visit = memory.conversation("visit-981", subject="patient-7")
        visit.append("human", "Dizzy since Monday. My SSN is 123-45-6789, mail results to pat@example.org")
        visit.append("ai", "Noted; a follow-up is booked for Thursday.")
        for message in visit.last(10):
            say(f"  {message.role:>5}: {message.content}")
    say("\n# The tenant's compliance report CronJob, run once (the sandbox plays the kubelet):")
    _show(sandbox, say, "get", "cronjobs", "-n", "team-research")
    run = sandbox.run_cronjob("team-research", "clinical-notes-memory-report")
    say(f"  job {run.job_name}: exit code {run.exit_code}")
    deadline = time.monotonic() + timeout
    while sandbox.kubectl("get", "configmap", "clinical-notes-compliance-report", "-n", "team-research",
                          check=False).returncode != 0:  # fmt: skip
        if time.monotonic() > deadline:
            say("  the operator did not publish the report in time")
            return False
        time.sleep(0.5)
    summary = _show(sandbox, say, "get", "configmap", "clinical-notes-compliance-report", "-n", "team-research",
                    "-o", "jsonpath={.data.summary\\.md}")  # fmt: skip
    if "FAIL" in summary:
        say("# The failures are real: the isolation probe above wrote plain values without a TTL with intake's")
        say("# own credentials, outside the library; the report measures the live data, not only the library's.")
    return run.succeeded and "Audit: 0 events" not in summary
