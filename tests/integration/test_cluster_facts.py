"""The Valkey Cluster facts issue 13 is designed on, checked on a real 3x1 cluster on loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from memory_sandbox.cluster import SLOTS, Cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(primaries=3, replicas=1) as formed:
        yield formed


def _set_user(node_client: redis.Redis, name: str, password: str) -> None:
    node_client.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", "~*", "+@all")


def _can_login(port: int, name: str, password: str) -> bool:
    try:
        with redis.Redis(host="127.0.0.1", port=port, username=name, password=password) as client:
            return bool(client.ping())
    except redis.AuthenticationError:
        return False


def test_an_acl_user_set_on_one_primary_exists_on_no_other_node(cluster: Cluster) -> None:
    primary = cluster.primary_of(0)
    with primary.admin_client() as client:
        _set_user(client, "only-here", "pw-only-here")
    assert _can_login(primary.port, "only-here", "pw-only-here")
    others = [node for node in cluster.nodes if node is not primary]
    assert [node.port for node in others if _can_login(node.port, "only-here", "pw-only-here")] == []


def test_a_transaction_across_slots_is_refused_and_one_hash_tag_works(cluster: Cluster) -> None:
    slot = key_slot(b"t")
    shard = next(i for i in reversed(range(cluster.primaries)) if i * SLOTS // cluster.primaries <= slot)
    with cluster.primary_of(shard).admin_client() as client:
        # redis-py drops the CROSSSLOT prefix; the server's message follows it
        with pytest.raises(redis.ResponseError, match="don't hash to the same slot"):
            client.execute_command("WATCH", "a", "b")
        pipe = client.pipeline(transaction=True)
        pipe.set("{t}:a", 1).set("{t}:b", 2)
        assert pipe.execute() == [True, True]


def test_a_cluster_client_logs_in_as_a_user_on_every_node(cluster: Cluster) -> None:
    for node in cluster.nodes:
        with node.admin_client() as client:
            _set_user(client, "everywhere", "pw-everywhere")
    with cluster.cluster_client("everywhere", "pw-everywhere") as client:
        assert isinstance(client, RedisCluster)
        for i in range(50):
            client.set(f"k{i}", i)
        assert [client.get(f"k{i}") for i in range(50)] == [str(i) for i in range(50)]


def test_a_promoted_replica_serves_only_the_users_it_was_given(cluster: Cluster) -> None:
    primary = cluster.primary_of(1)
    with primary.admin_client() as client:
        _set_user(client, "primary-only", "pw-p")
    promoted, _seconds = cluster.kill_primary(1)
    assert promoted is not primary
    assert not _can_login(promoted.port, "primary-only", "pw-p")


def test_the_cluster_stops_every_process_it_started() -> None:
    with Cluster(primaries=3, replicas=1) as formed:
        pids = [node.pid for node in formed.nodes]
        assert all(pids) and len(pids) == 6
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_cluster_client_keeps_working_after_its_shard_fails_over(cluster: Cluster) -> None:
    for node in cluster.nodes:
        if node.running:
            with node.admin_client() as client:
                _set_user(client, "survivor", "pw-survivor")
    # shard 2: the promoted-replica test above already spent shard 1's only replica
    tag = next(f"t{i}" for i in range(1000) if key_slot(f"t{i}".encode()) >= 2 * SLOTS // cluster.primaries)
    key, shard = f"{{{tag}}}:k", 2
    with cluster.cluster_client("survivor", "pw-survivor") as client:
        client.set(key, "before")
        cluster.wait_healthy()  # the replica has the write before its primary dies
        cluster.kill_primary(shard)
        client.set(key, "after")  # the same client object: refreshes its topology on the dead node's error
        assert client.get(key) == "after"
