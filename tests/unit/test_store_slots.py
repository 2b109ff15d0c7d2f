"""A per-store limit on reconciles in flight: one slow store cannot hold every worker of the operator, and a store
that answers promptly is never limited."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest

from memory_operator.clients.kube import KubeClient
from memory_operator.connections import StoreConnections
from memory_operator.errors import StoreBusy


def connections(per_store: int, slow_after: float) -> StoreConnections:
    return StoreConnections(KubeClient.__new__(KubeClient), per_store=per_store, slow_after=slow_after)


def test_a_store_whose_reconciles_finish_promptly_is_not_limited() -> None:
    stores = connections(2, slow_after=60.0)
    with ExitStack() as held:
        for _ in range(6):  # all eight of kopf's workers on one healthy store is fine
            held.enter_context(stores.slot("fast"))


def test_a_slow_store_takes_as_many_reconciles_as_its_slots_and_puts_the_next_off() -> None:
    stores = connections(2, slow_after=0.1)
    with ExitStack() as held:
        held.enter_context(stores.slot("slow"))
        held.enter_context(stores.slot("slow"))
        time.sleep(0.15)  # both are still in flight: the store hangs
        with pytest.raises(StoreBusy, match=r"'slow' has 2 reconciles in flight, the oldest for"), stores.slot("slow"):
            pytest.fail("a third reconcile ran")
        with stores.slot("other"), stores.slot("other"), stores.slot("other"):  # another store is not held up
            pass
    with stores.slot("slow"), stores.slot("slow"):  # released when the blocks end
        pass


def test_a_slot_is_released_when_the_reconcile_fails() -> None:
    stores = connections(1, slow_after=0.0)
    with pytest.raises(RuntimeError), stores.slot("s"):
        raise RuntimeError("reconcile failed")
    with stores.slot("s"):
        pass
    assert not stores._busy


def test_threads_racing_for_a_slow_stores_slots_never_exceed_the_limit() -> None:
    stores, limit = connections(3, slow_after=0.0), 3
    inside, peak, lock = [0], [0], threading.Lock()
    barrier = threading.Barrier(16)

    def work() -> None:
        barrier.wait()
        for _ in range(200):
            try:
                with stores.slot("s"):
                    with lock:
                        inside[0] += 1
                        peak[0] = max(peak[0], inside[0])
                    with lock:
                        inside[0] -= 1
            except StoreBusy:
                pass

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= peak[0] <= limit
    assert not stores._busy  # every slot given back


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        connections(0, slow_after=1.0)
