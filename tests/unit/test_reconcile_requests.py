"""Reconcile requests: a policy change or a change to an owned child asks the tenant, never writes its status.

The handlers are called as kopf would call them, with a fake API client that records what was asked of it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import kopf
import pytest

from memory_operator.clients.kube import KubeError, OwnWrites
from memory_operator.handlers import compliancepolicy, memorytenant
from memory_operator.handlers.requests import REQUEST_ANNOTATION, spec_or_request_changed

LOG = logging.getLogger("test")
SECRETS = kopf.Resource("", "v1", "secrets", kind="Secret", namespaced=True)
CRONJOBS = kopf.Resource("batch", "v1", "cronjobs", kind="CronJob", namespaced=True)


class FakeKube:
    """Records annotations asked for; refuses the tenants named in `refuse` like an API server in trouble."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.annotated: list[tuple[str, str, str, dict[str, str]]] = []
        self.refuse = refuse
        self.own_writes = OwnWrites()
        self.observed: list[tuple[str, str | None, str]] = []

    def observe(self, kind: str, type_: str | None, body: dict[str, Any]) -> None:
        self.observed.append((kind, type_, str(body["metadata"].get("resourceVersion"))))

    def annotate_namespaced_object(self, plural: str, namespace: str, name: str, annotations: dict[str, str]) -> bool:
        if f"{namespace}/{name}" in self.refuse:
            raise KubeError(f"annotating {plural} {namespace}/{name}: HTTP 500", 500)
        self.annotated.append((plural, namespace, name, annotations))
        return True

    def annotate_cluster_object(self, plural: str, name: str, annotations: dict[str, str]) -> bool:
        if name in self.refuse:
            raise KubeError(f"annotating {plural}/{name}: HTTP 500", 500)
        self.annotated.append((plural, "", name, annotations))
        return True

    def wrote(self, kind: str, namespace: str, name: str, resource_version: str, wait: float = 0.0) -> bool:
        return self.own_writes.produced(kind, namespace, name, resource_version, wait)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the handler called kube.{name}: only a reconcile request was expected")


class FakeDeps:
    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.retry_scale = 1.0


def memo(kube: FakeKube) -> kopf.Memo:
    return kopf.Memo(deps=FakeDeps(kube))


def policy_body(name: str = "gdpr", version: str = "41") -> kopf.Body:
    return kopf.Body({"kind": "CompliancePolicy", "metadata": {"name": name, "resourceVersion": version}})


def child(kind: str = "Secret", owner_kind: str = "MemoryTenant", version: str = "7") -> kopf.Body:
    owner = {"apiVersion": "agentmemory.io/v1alpha1", "kind": owner_kind, "name": "alpha", "uid": "u1"}
    return kopf.Body(
        {
            "kind": kind,
            "metadata": {
                "name": "alpha-memory-credentials",
                "namespace": "team",
                "resourceVersion": version,
                "ownerReferences": [owner],
            },
        }
    )


def test_a_policy_change_asks_each_bound_tenant_and_writes_none_of_their_status() -> None:
    kube = FakeKube()
    index = {"gdpr": ["team/alpha", "team/beta", "other/gamma"]}

    compliancepolicy.policy_nudges_tenants(body=policy_body(), memo=memo(kube), logger=LOG, tenants_by_policy=index)

    cause = {REQUEST_ANNOTATION: "CompliancePolicy/gdpr@41"}
    assert kube.annotated == [
        ("memorytenants", "other", "gamma", cause),
        ("memorytenants", "team", "alpha", cause),
        ("memorytenants", "team", "beta", cause),
    ]  # and nothing else: FakeKube fails any other call, a status patch included


def test_a_tenant_that_cannot_be_asked_does_not_keep_the_others_from_being_asked() -> None:
    kube = FakeKube(refuse=frozenset({"team/alpha"}))
    index = {"gdpr": ["team/alpha", "team/beta"]}

    with pytest.raises(kopf.TemporaryError, match="team/alpha"):
        compliancepolicy.policy_nudges_tenants(body=policy_body(), memo=memo(kube), logger=LOG, tenants_by_policy=index)
    assert [call[2] for call in kube.annotated] == ["beta"]


def test_a_policy_no_tenant_names_asks_nothing() -> None:
    kube = FakeKube()
    compliancepolicy.policy_nudges_tenants(body=policy_body(), memo=memo(kube), logger=LOG, tenants_by_policy={})
    assert kube.annotated == []


@pytest.mark.parametrize(
    ("old", "new", "wakes"),
    [
        ({"spec": {"agents": ["a"]}}, {"spec": {"agents": ["a", "b"]}}, True),
        ({"spec": {}}, {"spec": {}, "metadata": {"annotations": {REQUEST_ANNOTATION: "Secret/x@2"}}}, True),
        (
            {"metadata": {"annotations": {REQUEST_ANNOTATION: "Secret/x@2"}}},
            {"metadata": {"annotations": {REQUEST_ANNOTATION: "CronJob/y@5"}}},
            True,
        ),
        ({"spec": {}}, {"spec": {}, "metadata": {"labels": {"team": "blue"}}}, False),
        ({"spec": {}}, {"spec": {}, "metadata": {"annotations": {"note": "hello"}}}, False),
    ],
)
def test_a_tenant_update_wakes_its_handler_for_a_new_spec_or_a_request_only(
    old: dict[str, Any], new: dict[str, Any], wakes: bool
) -> None:
    assert spec_or_request_changed(old=old, new=new) is wakes


def test_someone_elses_edit_of_a_child_asks_its_owner_for_a_reconcile() -> None:
    kube = FakeKube()
    body = child(version="8")
    assert memorytenant._changed_by_someone_else(type="MODIFIED", body=body, resource=SECRETS, memo=memo(kube))

    memorytenant.tenant_child_changed(type="MODIFIED", body=body, resource=SECRETS, memo=memo(kube), logger=LOG)

    assert kube.annotated == [
        ("memorytenants", "team", "alpha", {REQUEST_ANNOTATION: "Secret/alpha-memory-credentials@8"})
    ]


def test_the_echo_of_the_operators_own_write_asks_nothing() -> None:
    kube = FakeKube()
    kube.own_writes.record("CronJob", dict(child("CronJob", version="9")))
    assert not memorytenant._changed_by_someone_else(
        type="MODIFIED", body=child("CronJob", version="9"), resource=CRONJOBS, memo=memo(kube)
    )
    assert memorytenant._changed_by_someone_else(
        type="MODIFIED", body=child("CronJob", version="10"), resource=CRONJOBS, memo=memo(kube)
    )


def test_a_deleted_child_asks_even_when_the_operator_wrote_it_last() -> None:
    kube = FakeKube()
    kube.own_writes.record("Secret", dict(child(version="9")))
    assert memorytenant._changed_by_someone_else(type="DELETED", body=child(version="9"), resource=SECRETS,
                                                 memo=memo(kube))  # fmt: skip


def test_the_initial_listing_and_children_of_no_tenant_ask_nothing() -> None:
    kube = FakeKube()
    assert not memorytenant._changed_by_someone_else(type=None, body=child(), resource=SECRETS, memo=memo(kube))
    foreign = child(owner_kind="Deployment")
    assert not memorytenant._changed_by_someone_else(type="MODIFIED", body=foreign, resource=SECRETS,
                                                     memo=memo(kube))  # fmt: skip


def test_own_writes_remember_the_latest_versions_per_object_until_forgotten() -> None:
    writes = OwnWrites()
    for version in range(1, 3 + OwnWrites.RECENT):
        writes.record("Secret", {"metadata": {"namespace": "team", "name": "s", "resourceVersion": str(version)}})
    newest = 2 + OwnWrites.RECENT
    assert writes.produced("Secret", "team", "s", str(newest))
    assert writes.produced("Secret", "team", "s", str(newest - OwnWrites.RECENT + 1))  # an echo arriving late
    assert not writes.produced("Secret", "team", "s", "1")
    assert not writes.produced("CronJob", "team", "s", str(newest))
    assert not writes.produced("Secret", "team", "s", "999")  # someone else's write
    writes.forget("Secret", "team", "s")
    assert not writes.produced("Secret", "team", "s", str(newest))


def test_an_echo_that_arrives_before_the_writes_response_is_recognised_once_the_response_is_in() -> None:
    writes = OwnWrites()
    obj = {"metadata": {"namespace": "team", "name": "s", "resourceVersion": "5"}}
    in_flight, answered = threading.Event(), []

    def write() -> None:
        with writes.writing("Secret", "team", "s"):
            in_flight.set()
            time.sleep(0.2)  # the watch event is already out; the response is not
            writes.record("Secret", obj)

    writer = threading.Thread(target=write)
    writer.start()
    in_flight.wait()
    assert not writes.produced("Secret", "team", "s", "5")  # a filter that must not block cannot tell yet
    answered.append(writes.produced("Secret", "team", "s", "5", wait=5.0))
    writer.join()
    assert answered == [True]


def test_a_change_from_someone_else_is_told_apart_even_while_waiting() -> None:
    writes = OwnWrites()
    writes.record("Secret", {"metadata": {"namespace": "team", "name": "s", "resourceVersion": "5"}})
    started = time.monotonic()
    assert not writes.produced("Secret", "team", "s", "6", wait=5.0)  # nothing in flight: no wait at all
    assert time.monotonic() - started < 1.0


def test_the_child_handler_asks_nothing_for_an_echo_its_filter_could_not_tell_yet() -> None:
    kube = FakeKube()
    kube.own_writes.record("Secret", dict(child(version="12")))
    memorytenant.tenant_child_changed(
        type="MODIFIED", body=child(version="12"), resource=SECRETS, memo=memo(kube), logger=LOG
    )
    assert kube.annotated == []


def tenant_body(*policies: str) -> kopf.Body:
    return kopf.Body(
        {
            "kind": "MemoryTenant",
            "metadata": {"name": "alpha", "namespace": "team", "resourceVersion": "30"},
            "spec": {"policyRefs": [{"name": p} for p in policies]},
        }
    )


def test_a_new_tenant_asks_the_policies_it_names_to_count_it() -> None:
    kube = FakeKube()
    body = tenant_body("sox", "gdpr")
    asyncio.run(memorytenant.tenant_binds_policies(body=body, spec=body["spec"], memo=memo(kube)))
    cause = {REQUEST_ANNOTATION: "MemoryTenant/team/alpha@30"}
    assert kube.annotated == [("compliancepolicies", "", "gdpr", cause), ("compliancepolicies", "", "sox", cause)]


def test_a_tenant_that_changes_its_policies_asks_only_those_it_started_or_stopped_naming() -> None:
    kube = FakeKube()
    memorytenant.tenant_rebinds_policies(
        body=tenant_body("gdpr", "hipaa"),
        old=[{"name": "gdpr"}, {"name": "sox"}],
        new=[{"name": "gdpr"}, {"name": "hipaa"}],
        memo=memo(kube),
    )
    assert [call[2] for call in kube.annotated] == ["hipaa", "sox"]


def test_a_tenant_gone_asks_the_policies_it_named_and_a_refusal_is_only_logged() -> None:
    kube = FakeKube(refuse=frozenset({"sox"}))
    memorytenant.tenant_left_policies(body=tenant_body("sox", "gdpr"), memo=memo(kube), logger=LOG)
    assert [call[2] for call in kube.annotated] == ["gdpr"]


@pytest.mark.parametrize(
    ("spec", "names"),
    [({}, set()), ({"policyRefs": None}, set()), ({"policyRefs": [{"name": "a"}, "junk", {}]}, {"a"}), (None, set())],
)
def test_policy_names_tolerate_any_spec_shape(spec: Any, names: set[str]) -> None:
    assert memorytenant.policy_names(spec) == names
