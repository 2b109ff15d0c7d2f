"""status.usage from what the tenant's own writes maintain: the library's counts, at a cost per pass that does
not grow with the rest of the store (INFO commandstats around one steady reconcile)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from memory_client import AgentMemory
from memory_operator.clients.redis_admin import normalize_getuser
from memory_operator.deps import Deps
from memory_operator.reconcilers import memorytenant as reconciler
from memory_operator.reconcilers.common import Outcome
from memory_sandbox.engine import Engine, calls_between
from tests.integration.objects import make_store, make_tenant, ready, secret_data, settled

pytestmark = pytest.mark.integration


def _memory(api_client: k8s.ApiClient, namespace: str, name: str) -> AgentMemory:
    env = {
        **secret_data(api_client, namespace, f"{name}-bot-memory-credentials"),
        **secret_data(api_client, namespace, f"{name}-memory-keys"),
    }
    return AgentMemory.from_env(env)


def _write(memory: AgentMemory, conversations: int) -> None:
    for i in range(conversations):
        memory.conversation(f"c{i}", f"subject-{i}").append("user", f"message {i}")
    memory.shared_context("plan").create({"step": 1})


@pytest.fixture
def crowd(fresh_engine: Engine) -> Iterator[Engine]:
    """The test's own server, so its command statistics are the test's alone."""
    yield fresh_engine


def test_usage_and_the_key_quota_are_the_librarys_counts(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "counted", storeRef={"name": store}, agents=["bot"], quota={"keys": 10})
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    with _memory(api_client, namespace, "counted") as memory:
        _write(memory, 4)
        library = memory.usage()

    outcome = reconciler.reconcile(tenant, deps)

    assert outcome.status.usage is not None
    assert (outcome.status.usage.keys, library.keys) == (5, 5)  # 4 conversations and a shared context
    assert outcome.status.usage.memory_bytes >= library.bytes and not outcome.status.usage.sampled
    assert ready(outcome) == ("True", "Provisioned")
    tighter = tenant.spec.model_copy(update={"quota": tenant.spec.quota.model_copy(update={"keys": 4})})  # type: ignore[union-attr]
    over = reconciler.reconcile(settled(tenant, outcome).model_copy(update={"spec": tighter}), deps)
    assert ready(over) == ("False", "QuotaExceeded")
    assert "5 keys exceed spec.quota.keys 4" in next(c.message for c in over.status.conditions if c.type == "Ready")


def _steady_pass(engine: Engine, tenant: object, deps: Deps) -> tuple[dict[str, int], Outcome[object]]:
    before = engine.command_calls()
    outcome = reconciler.reconcile(tenant, deps)  # type: ignore[arg-type]
    return calls_between(before, engine.command_calls()), outcome  # type: ignore[return-value]


def test_a_steady_pass_costs_the_same_commands_among_10000_other_keys(
    api_client: k8s.ApiClient, crowd: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, crowd)
    tenant = make_tenant(api_client, namespace, "lonely", storeRef={"name": store}, agents=["bot"])
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    with _memory(api_client, namespace, "lonely") as memory:
        _write(memory, 9)
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    alone, outcome = _steady_pass(crowd, tenant, deps)
    with crowd.admin_client() as client:
        for start in range(0, 10_000, 1000):
            client.mset({f"mem:{namespace}:others:k{i}": b"x" * 64 for i in range(start, start + 1000)})

    crowded, again = _steady_pass(crowd, settled(tenant, outcome), deps)

    assert crowded == alone
    assert "scan" not in alone
    assert again.status.usage is not None and again.status.usage.keys == 10  # type: ignore[attr-defined]


def test_a_converged_pass_sets_no_acl_user_and_an_edited_one_is_repaired_next_pass(
    api_client: k8s.ApiClient, crowd: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, crowd)
    tenant = make_tenant(api_client, namespace, "steady", storeRef={"name": store}, agents=["bot"])
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))

    converged, outcome = _steady_pass(crowd, tenant, deps)

    assert "acl|setuser" not in converged and converged["acl|getuser"] == 3  # the tenant's, the agent's, the jobs'
    assert outcome.events == []
    username = f"mt_{namespace}_steady_bot"
    with crowd.admin_client() as client:
        desired = normalize_getuser(client.execute_command("ACL", "GETUSER", username))
        client.execute_command("ACL", "SETUSER", username, "+flushall", "~*")

    repaired, again = _steady_pass(crowd, settled(tenant, outcome), deps)

    assert repaired["acl|setuser"] == 1
    assert [(e.reason, username in e.message) for e in again.events] == [("DriftRepaired", True)]
    with crowd.admin_client(decode_responses=True) as client:
        trail = client.xrange(f"audit:{namespace}:steady")
        assert normalize_getuser(client.execute_command("ACL", "GETUSER", username)) == desired
    assert [fields["target"] for _, fields in trail if fields["action"] == "acl.drift_repaired"] == [username]
