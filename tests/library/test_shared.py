"""Shared context across agents: versions, compare-and-set conflicts, the access log, concurrent updaters."""

from __future__ import annotations

import threading

import pytest

from memory_client import ConflictError

from .conftest import Provisioner, Tenant


def test_create_then_update_bumps_the_version_and_merges(tenant: Tenant) -> None:
    ctx = tenant.memory("alpha").shared_context("plan")
    ctx.create({"goal": "ship", "owner": "alpha"})
    state = ctx.update({"owner": "beta"}, expected_version=1)
    assert (state.version, state.data) == (2, {"goal": "ship", "owner": "beta"})
    stored = tenant.memory("beta").shared_context("plan").get()
    assert stored is not None and (stored.version, stored.data, stored.updated_by) == (2, state.data, "alpha")


def test_a_stale_version_raises_a_conflict_and_changes_nothing(tenant: Tenant) -> None:
    alpha = tenant.memory("alpha").shared_context("plan")
    beta = tenant.memory("beta").shared_context("plan")
    alpha.create({"step": 0})
    beta.update({"step": 1}, expected_version=1)
    with pytest.raises(ConflictError) as caught:
        alpha.update({"step": 99}, expected_version=1)
    assert caught.value.current_version == 2
    assert alpha.get().data == {"step": 1}  # type: ignore[union-attr]


def test_creating_an_existing_context_is_a_conflict(tenant: Tenant) -> None:
    ctx = tenant.memory("alpha").shared_context("plan")
    ctx.create({})
    with pytest.raises(ConflictError):
        ctx.create({"x": 1})


def test_access_log_records_who_changed_which_keys(tenant: Tenant) -> None:
    tenant.memory("alpha").shared_context("plan").create({"a": 1})
    tenant.memory("beta").shared_context("plan").update({"b": 2, "c": 3}, 1)
    log = tenant.memory("alpha").shared_context("plan").access_log()
    assert [(e.actor, e.version, e.keys) for e in log] == [("beta", 2, ["b", "c"]), ("alpha", 1, ["a"])]


def test_strict_agents_share_context_under_the_shared_prefix(provision: Provisioner) -> None:
    strict = provision.tenant("strict")
    strict.memory("alpha").shared_context("plan").create({"x": 1})
    assert strict.memory("beta").shared_context("plan").get().data == {"x": 1}  # type: ignore[union-attr]


def test_concurrent_updaters_of_one_version_have_exactly_one_winner(tenant: Tenant) -> None:
    tenant.memory("alpha").shared_context("plan").create({"n": 0})
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def update(i: int) -> None:
        ctx = tenant.memory("alpha" if i % 2 else "beta").shared_context("plan")
        barrier.wait()
        try:
            ctx.update({"n": i}, expected_version=1)
            outcomes.append("won")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=update, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["won"]
    assert tenant.memory("alpha").shared_context("plan").get().version == 2  # type: ignore[union-attr]
