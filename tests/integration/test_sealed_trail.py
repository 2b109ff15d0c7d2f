"""Attacks on the compliance evidence with nothing but a tenant's (or one agent's) own credentials, against the
operator's reconcile and a real valkey-server: each one that used to pass unnoticed is now on record.

Before the seal, `verify_audit()` and the report's integrity check passed for every attack below except the
admin-only ones, and any agent could HSET the report the operator published.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from kubernetes import client as k8s

from memory_client import AgentMemory
from memory_client.audit import GENESIS, chain_hash
from memory_client.seal import Seal, TrailInfo, verify_trail
from memory_operator.builders import acl
from memory_operator.deps import Deps
from memory_operator.reconcilers import memorytenant as reconciler
from memory_operator.reconcilers.common import Outcome
from memory_operator.surveys import SURVEY_INTERVAL_MS
from memory_sandbox.engine import Engine
from tests.integration.objects import login, make_store, make_tenant, secret_data, settled, store_pass

pytestmark = pytest.mark.integration


def _append(client: redis.Redis, stream: str, action: str, entry_id: str = "*", maxlen: int | None = None) -> str:
    """An event chained to the stream's head, as the library writes one (or as a forger links to what it wants)."""
    head = client.xrevrange(stream, count=1)
    prev = head[0][1]["h"] if head else GENESIS
    fields = {"v": "1", "ts": "1", "actor": "mallory", "action": action, "target": "", "n": "1"}
    linked = {**fields, "prev": prev, "h": chain_hash(prev, fields)}
    return str(client.xadd(stream, linked, id=entry_id, maxlen=maxlen, approximate=False))


def _forged_genesis(client: redis.Redis, stream: str, action: str) -> None:
    """XADD ... MAXLEN 1 with an event linked to the genesis: the whole history replaced by one clean event."""
    fields = {"v": "1", "ts": "1", "actor": "mallory", "action": action, "target": "", "n": "1"}
    client.xadd(stream, {**fields, "prev": GENESIS, "h": chain_hash(GENESIS, fields)}, maxlen=1, approximate=False)


class Sealed:
    """A provisioned tenant whose trail holds a few genuine events, sealed by one pass."""

    def __init__(self, api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str, name: str) -> None:
        self.deps, self.namespace, self.name = deps, namespace, name
        store = make_store(api_client, engine)
        self.tenant = make_tenant(api_client, namespace, name, storeRef={"name": store}, agents=["bot"])
        self.outcome = reconciler.reconcile(self.tenant, deps)
        self.stream = acl.audit_key(namespace, name)
        self.agent = login(api_client, namespace, f"{name}-bot-memory-credentials")
        self.jobs = login(api_client, namespace, f"{name}-memory-job-credentials")
        self.admin = engine.admin_client(decode_responses=True)
        for action in ("save", "acl.drift_repaired", "save"):
            _append(self.agent, self.stream, action)
        self.again()

    def again(self) -> Outcome[object]:
        self.outcome = reconciler.reconcile(settled(self.tenant, self.outcome), self.deps)
        self.tenant = settled(self.tenant, self.outcome)
        return self.outcome

    @property
    def breach(self) -> str:
        audit = self.outcome.status.audit
        assert audit is not None
        return audit.breach

    def compliant(self) -> tuple[str, str]:
        cond = next(c for c in self.outcome.status.conditions if c.type == "Compliant")
        return cond.status, cond.reason


@pytest.fixture
def sealed(api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str) -> Sealed:
    return Sealed(api_client, engine, deps, namespace, "ledger")


def test_a_clean_trail_is_sealed_and_stays_clean(sealed: Sealed) -> None:
    _append(sealed.agent, sealed.stream, "save")
    outcome = sealed.again()
    audit = outcome.status.audit
    assert audit is not None and audit.breach == "" and audit.verified == 4
    assert audit.head == sealed.admin.xrevrange(sealed.stream, count=1)[0][0]
    assert sealed.compliant() == ("Unknown", "NoReportYet")
    assert "AuditTrailTampered" not in {e.reason for e in outcome.events}
    # The seal lives outside every tenant pattern: neither the agent nor the jobs' user can write it.
    with pytest.raises(redis.exceptions.NoPermissionError):
        sealed.agent.hset(acl.seal_key(sealed.namespace, sealed.name), "breach", "")
    with pytest.raises(redis.exceptions.NoPermissionError):
        sealed.jobs.hset(acl.seal_key(sealed.namespace, sealed.name), "breach", "")


def test_xadd_maxlen_1_with_a_forged_genesis_is_a_breach(sealed: Sealed) -> None:
    _forged_genesis(sealed.agent, sealed.stream, "save")

    outcome = sealed.again()

    assert "oldest entries were removed" in sealed.breach
    assert sealed.compliant() == ("False", "AuditTrailTampered")
    assert [e.reason for e in outcome.events if e.reason == "AuditTrailTampered"] == ["AuditTrailTampered"]
    # Sticky: later clean passes keep it on record, and the Event is posted once.
    _append(sealed.agent, sealed.stream, "save")
    later = sealed.again()
    assert "oldest entries were removed" in sealed.breach
    assert "AuditTrailTampered" not in {e.reason for e in later.events}


def test_dropping_the_drift_event_and_rechaining_from_the_genesis_is_a_breach(sealed: Sealed) -> None:
    kept = [f for _, f in sealed.admin.xrange(sealed.stream) if f["action"] != "acl.drift_repaired"]
    _forged_genesis(sealed.agent, sealed.stream, kept[0]["action"])
    for fields in kept[1:]:
        _append(sealed.agent, sealed.stream, fields["action"])

    sealed.again()

    assert sealed.breach
    assert sealed.compliant() == ("False", "AuditTrailTampered")


def test_an_event_with_a_far_future_id_is_a_breach(sealed: Sealed) -> None:
    _append(sealed.agent, sealed.stream, "save", entry_id="4102444800000-0")

    sealed.again()

    assert "ahead of the server clock" in sealed.breach
    assert sealed.outcome.status.audit is not None
    assert sealed.outcome.status.audit.breach_entry == "4102444800000-0"


def test_a_seal_altered_without_the_operators_key_is_a_breach(sealed: Sealed) -> None:
    where = acl.seal_key(sealed.namespace, sealed.name)
    sealed.admin.hset(where, "trimmed", "99")  # someone with admin access but not the key

    sealed.again()

    assert "MAC does not match" in sealed.breach


def test_a_seal_deleted_from_the_store_is_a_breach(sealed: Sealed) -> None:
    sealed.admin.delete(acl.seal_key(sealed.namespace, sealed.name))

    sealed.again()

    assert "seal was deleted" in sealed.breach


def test_the_stored_seal_is_what_status_shows(sealed: Sealed) -> None:
    seal = Seal.open(sealed.admin.hgetall(acl.seal_key(sealed.namespace, sealed.name)), sealed.deps.seal_key or b"")
    audit = sealed.outcome.status.audit
    assert audit is not None
    assert (seal.first, seal.head, seal.head_h, seal.added) == (
        audit.first,
        audit.head,
        audit.head_hash,
        audit.entries_added,
    )


def test_a_report_forged_by_an_agent_is_neither_writable_nor_published(sealed: Sealed) -> None:
    forged = {"report": '{"score":100,"violations":[],"generatedAt":"2026-01-01T00:00:00Z"}', "status": "succeeded"}
    shared = acl.shared_prefix(sealed.namespace, sealed.name)
    sealed.agent.hset(f"{shared}jobs:report", mapping=forged)  # where reports used to be read from
    with pytest.raises(redis.exceptions.NoPermissionError):
        sealed.agent.hset(f"{acl.results_prefix(sealed.namespace, sealed.name)}report", mapping=forged)

    sealed.again()

    assert sealed.outcome.status.compliance is None
    assert sealed.compliant() == ("Unknown", "NoReportYet")


def test_the_jobs_user_reads_the_tenant_but_writes_only_results_and_retention(
    sealed: Sealed, api_client: k8s.ApiClient
) -> None:
    prefix = acl.tenant_prefix(sealed.namespace, sealed.name)
    sealed.agent.set(f"{prefix}agent:bot:note", "x")
    assert sealed.jobs.get(f"{prefix}agent:bot:note") == "x"
    assert sealed.jobs.xlen(sealed.stream) == 3
    for write in (
        lambda: sealed.jobs.set(f"{prefix}agent:bot:note", "forged"),
        lambda: sealed.jobs.delete(f"{prefix}agent:bot:note"),
        lambda: sealed.jobs.xadd(sealed.stream, {"action": "save"}),
        lambda: sealed.jobs.scan(0),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            write()
    assert sealed.jobs.pexpire(f"{prefix}agent:bot:note", 60_000)  # the retention job's backstop TTL
    assert sealed.jobs.hset(f"{acl.results_prefix(sealed.namespace, sealed.name)}report", "status", "running") == 1
    env = secret_data(api_client, sealed.namespace, f"{sealed.name}-memory-job-credentials")
    assert env["REDIS_USERNAME"] == f"mt_{sealed.namespace}_{sealed.name}__jobs"
    assert env["MEMORY_RESULTS_PREFIX"] == acl.results_prefix(sealed.namespace, sealed.name)


def test_the_verifier_given_the_seal_sees_a_history_the_chain_alone_accepts(sealed: Sealed) -> None:
    """`verify_trail` walks the trail as the report job does: a forged genesis passes the chain, not the seal."""
    seal = Seal.open(sealed.admin.hgetall(acl.seal_key(sealed.namespace, sealed.name)), sealed.deps.seal_key or b"")

    def read(start: str, end: str, count: int) -> list[tuple[str, dict[str, str]]]:
        return [(i, dict(f)) for i, f in sealed.jobs.xrange(sealed.stream, start, end, count=count)]

    def info() -> TrailInfo | None:
        return TrailInfo.from_xinfo(sealed.jobs.xinfo_stream(sealed.stream))

    now_ms = int(sealed.admin.time()[0]) * 1000
    assert verify_trail(read, info(), seal, now_ms).ok
    _forged_genesis(sealed.agent, sealed.stream, "save")
    assert verify_trail(read, info(), None, now_ms).ok  # the chain alone: a clean history from the genesis
    forged = verify_trail(read, info(), seal, now_ms)
    assert not forged.ok and forged.reason is not None and "oldest entries were removed" in forged.reason


def test_an_agent_can_hold_its_trail_to_the_seal_in_status(
    sealed: Sealed, api_client: k8s.ApiClient, namespace: str
) -> None:
    """`AgentMemory.verify_sealed(status.audit)`: what `kubectl get memorytenant -o json` shows is enough."""
    env = {
        **secret_data(api_client, namespace, "ledger-bot-memory-credentials"),
        **secret_data(api_client, namespace, "ledger-memory-keys"),
    }
    audit = sealed.outcome.status.audit
    assert audit is not None
    status = audit.model_dump(by_alias=True)
    with AgentMemory.from_env(env) as memory:
        assert memory.verify_sealed(status).ok
        assert memory.verify_audit().ok
        _forged_genesis(sealed.agent, sealed.stream, "save")
        assert memory.verify_audit().ok  # the chain alone cannot tell
        forged = memory.verify_sealed(status)
    assert not forged.ok and forged.reason is not None and "oldest entries were removed" in forged.reason


def test_keys_written_around_the_library_are_in_the_operators_survey(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    """A plaintext SSN and a key without TTL written with an agent's credentials outside the library's index:
    the jobs' user cannot SCAN for them, the operator's hourly survey of the prefix finds them."""
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "sloppy", storeRef={"name": store}, agents=["bot"], retentionDays=30)
    first = reconciler.reconcile(tenant, deps)
    store_pass(api_client, store, deps)  # the first survey of the new tenant
    agent = login(api_client, namespace, "sloppy-bot-memory-credentials")
    prefix = acl.tenant_prefix(namespace, "sloppy")
    agent.set(f"{prefix}notes", "SSN 123-45-6789")
    facts_key = f"{acl.results_prefix(namespace, 'sloppy')}facts"
    admin = engine.admin_client(decode_responses=True)
    assert admin.hget(facts_key, "plaintext_values") == "0"
    an_hour_on = deps.clock() + timedelta(milliseconds=SURVEY_INTERVAL_MS)
    deps.clock = lambda: an_hour_on  # the hour is up: the tenant is due again

    reconciler.reconcile(settled(tenant, first), deps)
    store_pass(api_client, store, deps)

    facts = admin.hgetall(facts_key)
    assert facts["plaintext_values"] == "1" and facts["keys_without_ttl"] == "1"
    with pytest.raises(redis.exceptions.NoPermissionError):
        agent.hset(facts_key, "plaintext_values", "0")
