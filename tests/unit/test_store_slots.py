"""A per-store limit on reconciles in flight: one slow store cannot hold every worker of the operator."""

from __future__ import annotations

import threading
from contextlib import ExitStack

import pytest

from memory_operator.clients.kube import KubeClient
from memory_operator.connections import StoreConnections
from memory_operator.errors import StoreBusy


def connections(per_store: int) -> StoreConnections:
    return StoreConnections(KubeClient.__new__(KubeClient), per_store=per_store)  # slots touch no client


def test_a_store_takes_as_many_reconciles_as_its_slots_and_puts_the_next_off() -> None:
    stores = connections(2)
    with ExitStack() as held:
        held.enter_context(stores.slot("slow"))
        held.enter_context(stores.slot("slow"))
        with pytest.raises(StoreBusy, match="'slow' has 2 reconciles in flight"), stores.slot("slow"):
            pytest.fail("a third reconcile ran")
        with stores.slot("other"):  # another store is not held up
            pass
    with stores.slot("slow"), stores.slot("slow"):  # released when the blocks end
        pass


def test_a_slot_is_released_when_the_reconcile_fails() -> None:
    stores = connections(1)
    with pytest.raises(RuntimeError), stores.slot("s"):
        raise RuntimeError("reconcile failed")
    with stores.slot("s"):
        pass


def test_threads_racing_for_slots_never_exceed_the_limit() -> None:
    stores, limit, inside, peak, lock = connections(3), 3, [0], [0], threading.Lock()
    busy = [0]
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
                with lock:
                    busy[0] += 1

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= peak[0] <= limit
    assert not stores._busy  # every slot given back


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        connections(0)
