"""Leader election on a Lease, against the sandbox API server (resourceVersion conflicts are real there).

Each candidate gets its own fake monotonic clock, so "the holder stopped renewing for the Lease's duration" is
decided without sleeping; the races and the renewal deadline run on real threads and the real clock.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client as k8s
from urllib3.exceptions import HTTPError

from memory_operator.clients.lease import LeaderElector, LeaseTiming
from memory_operator.election import run_elected
from memory_sandbox.engine import free_port
from memory_sandbox.sandbox import Sandbox

pytestmark = pytest.mark.integration

NAME = "agent-memory-operator"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def candidate(
    api_client: k8s.ApiClient, namespace: str, identity: str, timing: LeaseTiming | None = None, **kw: Any
) -> LeaderElector:
    return LeaderElector(k8s.CoordinationV1Api(api_client), namespace, NAME, identity, timing, **kw)


def lease(api_client: k8s.ApiClient, namespace: str) -> k8s.V1Lease:
    return k8s.CoordinationV1Api(api_client).read_namespaced_lease(NAME, namespace)


def test_the_first_candidate_creates_the_lease_and_a_second_one_stands_by(
    api_client: k8s.ApiClient, namespace: str
) -> None:
    a, b = (candidate(api_client, namespace, who, clock=Clock()) for who in ("a", "b"))
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert b.holder == "a"
    spec = lease(api_client, namespace).spec
    assert (spec.holder_identity, spec.lease_duration_seconds, spec.lease_transitions) == ("a", 15, 0)
    assert a.try_acquire_or_renew()  # renewing keeps the holder and its acquireTime
    renewed = lease(api_client, namespace).spec
    assert renewed.acquire_time == spec.acquire_time and renewed.renew_time > spec.renew_time


def test_a_standby_takes_over_only_once_the_record_it_saw_is_a_full_duration_old(
    api_client: k8s.ApiClient, namespace: str
) -> None:
    clock_b = Clock()
    a, b = candidate(api_client, namespace, "a", clock=Clock()), candidate(api_client, namespace, "b", clock=clock_b)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b first sees a's record now, on b's clock
    clock_b.now += 14.9
    assert not b.try_acquire_or_renew()
    assert a.try_acquire_or_renew()  # a renews: the record b sees changes, so b's wait starts again
    clock_b.now += 14.9
    assert not b.try_acquire_or_renew()
    clock_b.now += 15.0  # a stopped renewing (it died): 15 s after b last saw the record change
    assert b.try_acquire_or_renew()
    spec = lease(api_client, namespace).spec
    assert (spec.holder_identity, spec.lease_transitions) == ("b", 1)
    assert not a.try_acquire_or_renew()  # a, come back, finds it taken and does not take it back
    assert a.holder == "b"


def test_a_stale_lease_found_at_start_up_is_waited_out_not_taken_at_once(
    api_client: k8s.ApiClient, namespace: str
) -> None:
    """Timestamps in the Lease are another node's clock: a new candidate trusts only its own observation."""
    assert candidate(api_client, namespace, "old", clock=Clock()).try_acquire_or_renew()
    time.sleep(0.1)
    clock = Clock()
    fresh = candidate(api_client, namespace, "new", clock=clock)
    assert not fresh.try_acquire_or_renew()
    clock.now += 15.0
    assert fresh.try_acquire_or_renew()


def test_a_released_lease_is_taken_at_once(api_client: k8s.ApiClient, namespace: str) -> None:
    a, b = (candidate(api_client, namespace, who, clock=Clock()) for who in ("a", "b"))
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert a.release()
    assert not a.release()  # once
    assert b.try_acquire_or_renew()
    assert lease(api_client, namespace).spec.holder_identity == "b"
    assert not a.release()  # a no longer holds it: it must not clear b's hold


def test_candidates_racing_for_a_free_lease_elect_exactly_one(api_client: k8s.ApiClient, namespace: str) -> None:
    rounds, size = 10, 6
    for round_ in range(rounds):
        name = f"race-{round_}"
        electors = [
            LeaderElector(k8s.CoordinationV1Api(api_client), namespace, name, f"c{i}", clock=Clock())
            for i in range(size)
        ]
        won = race(electors)
        holder = k8s.CoordinationV1Api(api_client).read_namespaced_lease(name, namespace).spec.holder_identity
        assert won == [holder], f"round {round_}: {won} won, the Lease names {holder}"


def test_candidates_racing_for_an_expired_lease_elect_exactly_one(api_client: k8s.ApiClient, namespace: str) -> None:
    assert candidate(api_client, namespace, "dead", clock=Clock()).try_acquire_or_renew()
    clocks = [Clock() for _ in range(5)]
    electors = [candidate(api_client, namespace, f"c{i}", clock=c) for i, c in enumerate(clocks)]
    for e in electors:
        assert not e.try_acquire_or_renew()
    for c in clocks:
        c.now += 15.0
    won = race(electors)
    assert won == [lease(api_client, namespace).spec.holder_identity]
    assert lease(api_client, namespace).spec.lease_transitions == 1


def race(electors: list[LeaderElector]) -> list[str]:
    """All try at once (as far as threads can): the identities of those that were told they won."""
    barrier = threading.Barrier(len(electors))
    won: list[str] = []

    def attempt(elector: LeaderElector) -> None:
        barrier.wait()
        if elector.try_acquire_or_renew():
            won.append(elector.identity)

    threads = [threading.Thread(target=attempt, args=(e,)) for e in electors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won


class Breakable:
    """The coordination API, until `broken` is set: then every request fails as an unreachable server would."""

    def __init__(self, api: k8s.CoordinationV1Api) -> None:
        self._api = api
        self.broken = False

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._api, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.broken:
                raise HTTPError("connection refused")
            return method(*args, **kwargs)

        return call


def test_a_holder_that_cannot_renew_gives_up_after_the_deadline_before_anyone_may_take_over(
    api_client: k8s.ApiClient, namespace: str
) -> None:
    timing = LeaseTiming(duration=1.5, deadline=1.0, retry=0.1)
    api = Breakable(k8s.CoordinationV1Api(api_client))
    holder = LeaderElector(api, namespace, NAME, "holder", timing)  # type: ignore[arg-type]
    assert holder.try_acquire_or_renew()
    stop, lost_at = threading.Event(), []
    renewer = threading.Thread(target=holder.hold, args=(stop, lambda: lost_at.append(time.monotonic())))
    renewer.start()
    time.sleep(0.5)
    assert not lost_at  # renewing fine
    api.broken = True
    broke = time.monotonic()
    renewer.join(timeout=5)
    stop.set()
    assert len(lost_at) == 1
    assert holder.renewed_at is not None
    gave_up = lost_at[0] - holder.renewed_at
    assert timing.deadline <= gave_up < timing.duration, gave_up
    assert lost_at[0] - broke < timing.deadline + timing.retry


def test_a_holder_whose_lease_was_taken_is_told_at_its_next_renewal(api_client: k8s.ApiClient, namespace: str) -> None:
    timing = LeaseTiming(duration=1.5, deadline=1.0, retry=0.1)
    holder = candidate(api_client, namespace, "holder", timing)
    assert holder.try_acquire_or_renew()
    spec = k8s.CoordinationV1Api(api_client)
    current = spec.read_namespaced_lease(NAME, namespace)
    current.spec.holder_identity = "usurper"  # as a rival that (wrongly or not) took it over would
    spec.replace_namespaced_lease(NAME, namespace, current)
    lost = threading.Event()
    holder.hold(threading.Event(), lost.set)
    assert lost.is_set()
    assert holder.holder == "usurper"


def test_stopping_hold_stops_renewing(api_client: k8s.ApiClient, namespace: str) -> None:
    timing = LeaseTiming(duration=1.5, deadline=1.0, retry=0.1)
    holder = candidate(api_client, namespace, "holder", timing)
    assert holder.try_acquire_or_renew()
    stop, lost = threading.Event(), threading.Event()
    renewer = threading.Thread(target=holder.hold, args=(stop, lost.set))
    renewer.start()
    time.sleep(0.35)
    stop.set()
    renewer.join(timeout=2)
    assert not renewer.is_alive() and not lost.is_set()
    renewed = lease(api_client, namespace).spec.renew_time
    time.sleep(0.3)
    assert lease(api_client, namespace).spec.renew_time == renewed


@pytest.mark.parametrize(
    ("duration", "deadline", "retry"), [(15, 15, 2), (15, 10, 10), (10, 15, 2), (15, 10, 0), (15, 10, -1)]
)
def test_timings_out_of_order_are_refused(duration: float, deadline: float, retry: float) -> None:
    with pytest.raises(ValueError, match=r"retry .* < renew deadline .* < lease duration"):
        LeaseTiming(duration, deadline, retry)


def test_run_elected_stands_by_answering_liveness_then_runs_and_releases(
    api_client: k8s.ApiClient, namespace: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    timing = LeaseTiming(duration=1.5, deadline=1.0, retry=0.1)
    first = candidate(api_client, namespace, "first", timing)
    assert first.try_acquire_or_renew()
    second = candidate(api_client, namespace, "second", timing)
    running, finish, states = threading.Event(), threading.Event(), []

    def run() -> None:
        running.set()
        finish.wait(10)

    elected = threading.Thread(
        target=run_elected, args=(run, second), kwargs={"liveness_url": url, "leading": states.append}
    )
    elected.start()
    try:
        Sandbox.wait_for(lambda: _get(url) == (200, "standby\n"), timeout=5, what="the standby's liveness")
        assert _get(f"http://127.0.0.1:{port}/other")[0] == 404
        time.sleep(0.3)
        assert not running.is_set() and states == [False]
        assert first.release()
        assert running.wait(5)
        assert states == [False, True]
        assert _get(url) is None  # the standby endpoint is gone: the port is free for kopf's own
        assert lease(api_client, namespace).spec.holder_identity == "second"
    finally:
        finish.set()
        elected.join(timeout=10)
    assert states == [False, True, False]
    assert lease(api_client, namespace).spec.holder_identity is None  # released when `run` returned


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> tuple[int, str] | None:
    try:
        with _DIRECT.open(url, timeout=1) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return None
