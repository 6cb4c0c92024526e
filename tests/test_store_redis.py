"""The Redis store with several processes' views: races, idempotency, leases.

Two ``RedisStore`` objects on one real ``redis-server`` play two proxy
processes; their mirrors are made stale on purpose (long refresh interval), so
every race the Lua scripts must settle really happens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _util import Clock
from redis_server import redis_server

from router.accounts import Account, InactiveWindow, Plan, Setting, Status, hours_to_ms
from router.cli import main
from router.errors import InputError, NotInFlight
from router.ledger import Policy
from router.stores.base import PUBLIC
from router.stores.redis_store import RedisStore, connect, load_into_redis
from router.timeutil import parse_time

T0 = parse_time("2026-11-30T20:00:00Z")
FAST = {"model": "midjourney", "task_type": "imagine",
        "input": {"prompt": "a cat", "process_mode": "fast"}}
RELAX = {"model": "midjourney", "task_type": "imagine",
         "input": {"prompt": "a cat", "process_mode": "relax"}}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with redis_server() as u:
        yield u


def two(url: str, accounts: list[Account], clock: Clock | None = None,
        **kw: Any) -> tuple[RedisStore, RedisStore]:
    client = connect(url)
    client.flushdb()
    load_into_redis(client, accounts, Policy(), T0)
    c = clock or Clock()
    args: dict[str, Any] = {"refresh_interval": 3600.0, "clock": c, **kw}
    return RedisStore(connect(url), owner="A", **args), RedisStore(connect(url), owner="B", **args)


def acc(id_: str, **kw: Any) -> Account:
    kw.setdefault("max_in_flight", 2)
    kw.setdefault("fast_ms", hours_to_ms(1))
    return Account(id_, kw.pop("plan", Plan.STANDARD), **kw)


def test_lost_race_tries_the_next_account_R1_room(url: str) -> None:
    a, b = two(url, [acc("a1", max_in_flight=1), acc("a2", max_in_flight=1)])
    da = a.submit("t1", FAST, T0)
    db = b.submit("t2", FAST, T0)  # B's mirror still thinks a1 is empty
    assert (da.account_id, db.account_id) == ("a1", "a2")
    assert b.lost_races == 1
    dc = a.submit("t3", FAST, T0)
    assert dc.error is not None and dc.error.code == "pool_saturated"
    assert [x.in_flight for x in a.accounts()] == [1, 1]


def test_lost_race_on_fast_time_falls_to_next_fast_account_R2(url: str) -> None:
    # a1 has fast time for exactly one 60 s estimate; a2 has plenty
    a, b = two(url, [acc("a1", fast_ms=60_000, max_in_flight=5), acc("a2", max_in_flight=5)])
    assert a.submit("t1", FAST, T0).account_id == "a1"
    a.submit("t0", RELAX, T0)  # a1 has more load now in A's view only
    d = b.submit("t2", FAST, T0)
    assert d.account_id == "a2" and d.effective_mode is not None
    assert d.effective_mode.value == "fast"
    assert b.lost_races >= 1


def test_fast_reservation_rechecks_a_relax_setting_set_elsewhere_R6(url: str) -> None:
    a, b = two(url, [acc("a1", max_in_flight=5), acc("r1", setting=Setting.RELAX)])
    a.set_setting("a1", Setting.RELAX, T0)
    d = b.submit("t1", FAST, T0)  # B still believes a1 is fast-set
    assert b.lost_races == 1  # the script refused fast on a relax-set account
    assert d.fallback and d.effective_mode is not None and d.effective_mode.value == "relax"
    assert d.account_id == "a1"  # R3 fallback; least_loaded tie goes to the lowest id


def test_status_change_elsewhere_is_rechecked_R1_L5(url: str) -> None:
    a, b = two(url, [acc("a1"), acc("a2")])
    a.set_status("a1", Status.BANNED, T0)
    d = b.submit("t1", FAST, T0)
    assert d.account_id == "a2"


def test_completion_delivered_twice_charges_once_across_processes_L1(url: str) -> None:
    a, b = two(url, [acc("a1")])
    a.submit("t1", FAST, T0)
    out = b.complete("t1", 30.0, T0 + 10)  # delivered to the other process
    assert out.charged_ms == 30_000
    with pytest.raises(NotInFlight, match="already finished"):
        a.complete("t1", 30.0, T0 + 11)
    with pytest.raises(NotInFlight, match="already finished"):
        b.cancel("t1", T0 + 12)
    [acc1] = a.accounts()
    assert acc1.fast_ms == hours_to_ms(1) - 30_000
    assert (acc1.in_flight, acc1.reserved_ms) == (0, 0)
    assert acc1.period is not None and acc1.period.used_ms == 30_000


def test_unknown_and_public_tasks_are_not_in_flight_P1(url: str) -> None:
    a, b = two(url, [acc("a1")])
    with pytest.raises(NotInFlight, match="never submitted"):
        a.complete("nope", 1.0, T0)
    body = {**FAST, "config": {"service_mode": "public"}}
    assert a.submit("p1", body, T0).pool == "public"
    with pytest.raises(NotInFlight, match="public pool"):
        b.fail("p1", T0)


def test_child_routed_by_the_other_process_follows_its_parent_R7_M5(url: str) -> None:
    a, b = two(url, [acc("a1", max_in_flight=5), acc("a2", max_in_flight=5)])
    a.submit("t0", FAST, T0)
    parent = a.submit("t1", FAST, T0)
    child = b.submit("t2", {"model": "midjourney", "task_type": "upscale",
                            "input": {"origin_task_id": "t1", "index": "1"}}, T0)
    assert child.account_id == parent.account_id and child.mode_source == "parent"


def test_flip_happens_once_when_both_processes_complete_together_L3(url: str) -> None:
    a, b = two(url, [acc("a1", fast_ms=100_000, max_in_flight=5),
                     acc("r1", setting=Setting.RELAX)])
    a.submit("t1", FAST, T0)
    b.submit("t2", FAST, T0)
    a.complete("t1", 60.0, T0 + 1)
    b.complete("t2", 60.0, T0 + 1)  # B's view of a1 was stale: CAS re-reads
    notes = a.drain()[0] + b.drain()[0]
    assert [(n.type, n.account_id) for n in notes] == [("mj_bot_no_fasthour", "a1")]
    a1 = a.accounts()[0]
    assert a1.setting is Setting.RELAX and a1.fast_ms == 0
    assert a1.period is not None and a1.period.overdraft_ms == 20_000


def test_renewal_happens_once_when_both_processes_see_the_moment_L4(url: str) -> None:
    renews = parse_time("2026-12-01T00:00:00Z")
    a, b = two(url, [acc("a1", fast_ms=5_000, renews_at=renews)])
    a.advance(renews + 1)
    b.advance(renews + 2)
    ren = a.drain()[1] + b.drain()[1]
    assert [(r.account_id, r.at, r.expired_ms) for r in ren] == [("a1", renews, 5_000)]
    [a1] = b.accounts()
    assert a1.renewals_done == 1 and a1.fast_ms == hours_to_ms(15)
    assert len(a1.history) == 1 and a1.history[0].expired_ms == 5_000


def test_backups_activate_once_B1(url: str) -> None:
    a, b = two(url, [acc("a1", fast_ms=60_000, max_in_flight=5), acc("k1", backup=True)])
    a.submit("t1", FAST, T0)
    a.complete("t1", 60.0, T0 + 1)  # a1 at 0 fast time: B1 fires
    b.refresh()
    b.advance(T0 + 2)
    notes = [n.type for n in a.drain()[0] + b.drain()[0]]
    assert notes.count("backups_activated") == 1
    assert b.submit("t2", FAST, T0 + 3).account_id == "k1"


def test_dead_process_leases_expire_and_room_and_fast_time_come_back(url: str) -> None:
    clock = Clock()
    a, b = two(url, [acc("a1", max_in_flight=2)], clock, lease_seconds=5.0)
    a.submit("t1", FAST, T0)
    a.submit("t2", FAST, T0)
    b.submit("t3", RELAX, T0)  # no room: saturated
    clock.t += 3
    assert b.maintain(T0) == []  # leases still valid
    clock.t += 3  # A never heartbeats again: it is "dead"
    assert sorted(b.maintain(T0)) == ["t1", "t2"]
    [a1] = b.accounts()
    assert (a1.in_flight, a1.reserved_ms, a1.fast_ms) == (0, 0, hours_to_ms(1))
    with pytest.raises(NotInFlight, match="lease expired"):
        a.complete("t1", 60.0, T0 + 10)  # the late completion charges nothing
    assert b.accounts()[0].fast_ms == hours_to_ms(1)


def test_a_live_process_keeps_its_leases_by_heartbeat(url: str) -> None:
    clock = Clock()
    a, b = two(url, [acc("a1")], clock, lease_seconds=5.0)
    a.submit("t1", FAST, T0)
    for _ in range(4):
        clock.t += 3
        a.maintain(T0)
        assert b.maintain(T0) == []
    assert a.complete("t1", 10.0, T0 + 1).charged_ms == 10_000


def test_load_refuses_a_second_load_and_odd_ids(url: str, tmp_path: Any) -> None:
    client = connect(url)
    client.flushdb()
    load_into_redis(client, [acc("a1")], Policy(), T0)
    with pytest.raises(InputError, match="already loaded"):
        load_into_redis(client, [acc("a1")], Policy(), T0)
    with pytest.raises(InputError, match="hash tags"):
        load_into_redis(client, [acc("a{1}")], Policy(), T0, replace=True)
    with pytest.raises(InputError, match="empty"):  # "": the public pool's leases (P1)
        load_into_redis(client, [acc("")], Policy(), T0, replace=True)
    client.flushdb()
    with pytest.raises(InputError, match="byoa accounts load"):
        RedisStore(client)


def test_accounts_cli_load_list_set(url: str, capsys: pytest.CaptureFixture[str],
                                    example_dir: Any) -> None:
    connect(url).flushdb()
    f = str(example_dir / "accounts.json")
    assert main(["accounts", "load", f, "--redis", url]) == 0
    assert main(["accounts", "load", f, "--redis", url]) == 2
    assert "already loaded" in capsys.readouterr().err
    assert main(["accounts", "set", "a2", "--status", "banned", "--redis", url]) == 0
    assert main(["accounts", "set", "zz", "--setting", "relax", "--redis", url]) == 2
    assert "no account 'zz'" in capsys.readouterr().err
    assert main(["accounts", "list", "--redis", url]) == 0
    out = capsys.readouterr().out
    assert "a2" in out and "banned" in out
    assert main(["accounts", "list", "--redis", "redis://127.0.0.1:1/0"]) == 2
    assert "cannot reach Redis" in capsys.readouterr().err


def test_relax_completion_does_not_hide_another_process_charge_L1(url: str) -> None:
    """Regression: a no-charge finish must not mark a stale mirror as current
    (the next fast completion would overwrite the other process's charge)."""
    a, b = two(url, [acc("a1", max_in_flight=5)])
    a.submit("t1", RELAX, T0)
    a.submit("t2", FAST, T0)
    b.submit("t3", FAST, T0)
    b.complete("t3", 30.0, T0 + 1)
    a.complete("t1", 100.0, T0 + 2)  # relax: charges nothing (L1)
    a.complete("t2", 20.0, T0 + 3)
    [a1] = b.accounts()
    assert a1.fast_ms == hours_to_ms(1) - 50_000
    assert a1.period is not None and a1.period.used_ms == 50_000


def test_batched_submits_from_two_processes_never_overfill_R1(url: str) -> None:
    """submit_many: one round trip per round; lost races inside a batch re-route."""
    a, b = two(url, [acc("a1", max_in_flight=2), acc("a2", max_in_flight=2),
                     acc("a3", max_in_flight=1)])
    first = a.submit_many([(f"x{i}", FAST, None) for i in range(3)], T0)
    assert [d.account_id for d in first] == ["a1", "a2", "a3"]
    second = b.submit_many([(f"y{i}", FAST, None) for i in range(4)], T0)  # stale view
    ok = [d.account_id for d in second if d.error is None]
    assert sorted(ok) == ["a1", "a2"] and b.lost_races >= 1
    assert [d.error.code for d in second if d.error is not None] == ["pool_saturated"] * 2
    assert [(x.id, x.in_flight) for x in a.accounts()] == [("a1", 2), ("a2", 2), ("a3", 1)]
    client = connect(url)
    assert client.get("byoa:p:y3") is None  # rejected tasks leave no parent record


def test_keys_of_one_script_share_one_cluster_slot() -> None:
    """Every key a Lua script touches carries the same hash tag (Redis Cluster), the
    public pool's lease keys (P1, pseudo-account ``PUBLIC``) too."""
    from redis.crc import key_slot

    from router.proxy.queue import RedisQueue
    from router.stores.redis_store import Keys

    k = Keys("byoa")
    for acc_id, task_id in (("a1", "t-1"), ("acc:9", "3f1c-uuid"), ("x y", "{weird}"),
                            (PUBLIC, "p-1")):
        slots = {key_slot(key.encode()) for key in (
            k.acc(acc_id), k.leases(acc_id), k.task(acc_id, task_id), k.hist(acc_id),
            k.secret(acc_id))}
        assert len(slots) == 1, acc_id
    queue = RedisQueue(connect("redis://127.0.0.1:1/0"))  # no I/O until used
    assert len({key_slot(key.encode()) for key in queue.keys}) == 1


def test_a_window_opening_between_routing_and_reserving_is_rechecked_T1(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """a1's inactive window opens 30 s after T0. Routing at T0 picks a1; while it
    routes, 60 s pass; the reservation script sees the window open and refuses,
    and the task goes to a2 in the next round."""
    import router.stores.redis_reserve as reserve

    start = int(T0 % 86_400) + 30
    clock = Clock()
    a, _b = two(url, [acc("a1", inactive_window=InactiveWindow(start, start + 3600)),
                      acc("a2")], clock)
    real_route = reserve.route

    def slow_route(*args: Any, **kw: Any) -> Any:
        d = real_route(*args, **kw)
        clock.t += 60  # the window opens while this task is being routed
        return d

    monkeypatch.setattr(reserve, "route", slow_route)
    d = a.submit("t1", FAST, T0)
    assert d.account_id == "a2" and a.lost_races == 1
    a1, a2 = a.accounts()
    assert (a1.in_flight, a2.in_flight) == (0, 1)


def test_a_window_set_in_redis_after_the_mirror_read_it_is_rechecked_T1(url: str) -> None:
    a, _b = two(url, [acc("a1"), acc("a2")])
    start = int(T0 % 86_400) - 60  # open now, in Redis only: the mirror is stale
    connect(url).hset("byoa:{acc:a1}", mapping={"win_start": start, "win_end": start + 3600})
    d = a.submit("t1", FAST, T0)
    assert d.account_id == "a2" and a.lost_races == 1
    assert a.ledger.accounts["a1"].inactive_window == InactiveWindow(start, start + 3600)


def test_a_dormant_backup_is_rechecked_when_reserving_B1(url: str) -> None:
    """A mirror that believes the backups are awake while Redis has k1 dormant:
    the reservation script refuses k1, and the mirror learns it (B1)."""
    a, _b = two(url, [acc("a1", max_in_flight=1), acc("k1", backup=True)])
    assert a.submit("t1", FAST, T0).account_id == "a1"  # a1 is now full
    ledger = a.ledger
    ledger.backups_active = True  # the mirror went ahead of the pool
    ledger.touch(ledger.accounts["k1"])
    d = a.submit("t2", FAST, T0)
    assert d.error is not None and d.error.code == "pool_saturated", d
    assert a.lost_races == 1 and not ledger.backups_active
    assert connect(url).hget("byoa:{acc:k1}", "in_flight") == "0"
    a.complete("t1", 3600.0, T0 + 1)  # a1 out of fast time: B1 really fires now
    assert connect(url).hget("byoa:{acc:k1}", "dormant") == "0"
    assert a.submit("t3", FAST, T0 + 2).account_id == "k1"


def test_a_dead_process_tasks_are_adopted_routed_again_or_resumed(url: str) -> None:
    """Not started: released and handed over to be routed again (same id); started
    (job recorded): the adopter owns it now and its charge lands once (L1)."""
    clock = Clock()
    a, b = two(url, [acc("a1", max_in_flight=3)], clock, lease_seconds=5.0)
    a.submit("t1", FAST, T0)
    a.submit("t2", FAST, T0)
    assert a.start_many([("t2", "a1", "job-2", T0)]) == [True]
    clock.t += 6  # A stops renewing
    assert sorted(b.maintain(T0)) == ["t1", "t2"]
    got = {x.task_id: x for x in b.take_adopted()}
    assert got["t1"].job is None and got["t1"].body == FAST
    assert got["t2"].job == "job-2" and got["t2"].started_at == T0
    assert a.start_many([("t1", "a1", "job-1", T0)]) == [False]  # A may not start it
    [a1] = b.accounts()
    assert (a1.in_flight, a1.reserved_ms) == (1, 60_000)  # t2 still reserved, by B
    assert b.submit("t1", FAST, T0 + 7).account_id == "a1"  # routed again, same id
    assert b.complete("t2", 60.0, T0 + 8).charged_ms == 60_000
    with pytest.raises(NotInFlight):
        a.complete("t2", 60.0, T0 + 9)  # the old owner's late result charges nothing


PUBLIC_BODY = {**FAST, "config": {"service_mode": "public"}}


def test_a_dead_process_public_tasks_are_adopted_once_P1(url: str) -> None:
    """P1: a public-pool task holds a lease (no room, no fast time). While its process
    renews it nobody adopts it; once it stops, one survivor adopts it, exactly once:
    not started, it is routed again under the same id (to the public pool again);
    started (job recorded), the survivor follows that job and the old owner may not
    start anything. Nothing is charged to any account."""
    clock = Clock()
    a, b = two(url, [acc("a1")], clock, lease_seconds=5.0)
    c = RedisStore(connect(url), owner="C", refresh_interval=3600.0, clock=clock,
                   lease_seconds=5.0)
    assert [d.pool for d in a.submit_many([("p1", PUBLIC_BODY, None),
                                           ("p2", PUBLIC_BODY, None)], T0)] == ["public"] * 2
    assert a.start_many([("p2", PUBLIC, "job-p2", T0)]) == [True]
    clock.t += 3
    assert a.maintain(T0 + 3) == []  # A renews its leases
    clock.t += 3
    assert b.maintain(T0 + 6) == []  # renewed: not lapsed although 6 s > the lease
    clock.t += 6  # A stops renewing
    assert sorted(b.maintain(T0 + 12)) == ["p1", "p2"]
    assert c.maintain(T0 + 12) == [] and b.maintain(T0 + 12) == []  # adopted once
    got = {x.task_id: x for x in b.take_adopted()}
    assert got["p1"].account_id == PUBLIC and got["p1"].job is None
    assert got["p1"].body == PUBLIC_BODY
    assert got["p2"].job == "job-p2" and got["p2"].started_at == T0
    assert a.start_many([("p1", PUBLIC, "job-p1", T0)]) == [False]  # A may not start it
    assert "p1" not in a.leases.public  # nor renew it
    assert b.submit("p1", PUBLIC_BODY, T0 + 12).pool == "public"  # routed again, same id
    assert b.start_many([("p1", PUBLIC, "job-p1b", T0 + 12)]) == [True]
    clock.t += 20  # B keeps renewing what it adopted and re-routed: C adopts nothing
    assert b.maintain(T0 + 32) == [] and c.maintain(T0 + 32) == []
    assert b.end_public([("p1", "completed"), ("p2", "completed")]) == [True, True]
    assert a.end_public([("p2", "completed")]) == [False]  # ended already
    r = connect(url)
    assert r.hget("byoa:{pub}:t:p2", "starts") == "1"  # started once, followed once
    assert r.hget("byoa:{pub}:t:p1", "starts") == "1"  # the first start never happened
    assert (r.hget("byoa:{pub}", "in_flight"), r.zcard("byoa:{pub}:leases")) == ("0", 0)
    [a1] = c.accounts()
    assert (a1.in_flight, a1.reserved_ms, a1.fast_ms) == (0, 0, hours_to_ms(1))
    with pytest.raises(NotInFlight, match="public pool"):  # P1: never ours to charge
        b.complete("p1", 60.0, T0 + 33)


def test_public_tasks_are_handed_over_on_shutdown_P1(url: str) -> None:
    """A process shutting down hands its public-pool tasks over with the rest: the
    next maintenance pass of another process adopts them, without waiting for the
    lease (P1)."""
    clock = Clock()
    a, b = two(url, [acc("a1")], clock, lease_seconds=30.0)
    a.submit("p1", PUBLIC_BODY, T0)
    a.submit("t1", FAST, T0)
    assert a.start_many([("p1", PUBLIC, "job-p1", T0)]) == [True]
    assert b.maintain(T0) == []
    assert a.hand_over(["p1", "t1"]) == 2
    assert sorted(b.maintain(T0)) == ["p1", "t1"]
    got = {x.task_id: x for x in b.take_adopted()}
    assert (got["p1"].account_id, got["p1"].job) == (PUBLIC, "job-p1")
    assert (got["t1"].account_id, got["t1"].job) == ("a1", None)


def test_a_late_hand_over_leaves_a_task_adopted_meanwhile_alone(url: str) -> None:
    """Graceful shutdown hands over only what is still ours: a stalled process whose
    started task was adopted (and is followed) by another cannot make that task lapse
    again, so a third process does not adopt it a second time (L1: one follower, one
    charge); the task it still owns is handed over."""
    clock = Clock()
    a, b = two(url, [acc("a1", max_in_flight=3)], clock, lease_seconds=5.0)
    c = RedisStore(connect(url), owner="C", refresh_interval=3600.0, clock=clock,
                   lease_seconds=5.0)
    a.submit("t1", FAST, T0)
    assert a.start_many([("t1", "a1", "job-1", T0)]) == [True]
    clock.t += 6  # A stalls: its lease lapses
    assert b.maintain(T0 + 6) == ["t1"]  # B adopts t1 and follows job-1
    a.submit("t2", FAST, T0 + 6)  # A wakes up and takes another task
    assert a.hand_over(["t1", "t2"]) == 1  # then shuts down: only t2 is still its own
    assert c.maintain(T0 + 6) == ["t2"]  # t1 stays B's: not adopted a second time
    assert connect(url).hget("byoa:{acc:a1}:t:t1", "owner") == "B"
    assert b.complete("t1", 60.0, T0 + 7).charged_ms == 60_000


def test_a_start_sent_again_counts_once_L1(url: str) -> None:
    """The proxy retries a start after a Redis stall without knowing whether the first
    one landed: the same start (same job reference) is answered yes and counted once;
    another job for the same task is still a second start (the audit sees it)."""
    a, _b = two(url, [acc("a1")])
    a.submit("t1", FAST, T0)
    assert a.start_many([("t1", "a1", "job-1", T0)]) == [True]
    assert a.start_many([("t1", "a1", "job-1", T0)]) == [True]  # the retry
    h = connect(url).hgetall("byoa:{acc:a1}:t:t1")
    assert (h["job"], h["starts"]) == ("job-1", "1")
    assert a.start_many([("t1", "a1", "job-2", T0 + 1)]) == [True]
    assert connect(url).hget("byoa:{acc:a1}:t:t1", "starts") == "2"


def _calls(url: str, command: str) -> int:
    """How many times Redis ran ``command`` (scripts' own calls included)."""
    stats = connect(url).info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_completion_round_conflict_reuses_the_scripts_answer_L1(url: str) -> None:
    """L1 through a CAS conflict in ``complete_many``: the FINISH script's answer
    (the account as it is) updates the mirror, so the round reads nothing more
    than the script itself did (one HGETALL), and both charges land once."""
    a, b = two(url, [acc("a1", max_in_flight=5)])
    assert a.submit("t1", FAST, T0).account_id == "a1"
    assert b.submit("t2", FAST, T0).account_id == "a1"
    b.complete("t2", 20.0, T0 + 30)  # charges a1: its lver moves on, A's is stale
    before = _calls(url, "hgetall")
    [out] = a.complete_many([("t1", 30.0)], T0 + 40)
    assert not isinstance(out, NotInFlight) and out.charged_ms == 30_000
    assert _calls(url, "hgetall") - before == 1  # inside the conflicting FINISH only
    a1 = b.accounts()[0]
    assert (a1.in_flight, a1.fast_ms) == (0, hours_to_ms(1) - 50_000)
    assert a.ledger.accounts["a1"].fast_ms == hours_to_ms(1) - 50_000


def test_mirror_sync_rereads_only_the_accounts_another_process_changed_R1(url: str) -> None:
    """R1/L1 on a mirror kept by ``sync``: a reservation and a charge made by
    another process reach this process's mirror at its next sync, which reads
    the hash of that account alone (one HGETALL, inside ``SYNC``); a pool nobody
    changed costs no hash at all."""
    clock = Clock()
    a, b = two(url, [acc("a1", max_in_flight=5), acc("a2"), acc("a3")], clock,
               refresh_interval=1.0)
    clock.t += 2
    b.mirror.maybe_refresh()  # B has read every account since its full read
    before = _calls(url, "hgetall")
    clock.t += 2
    b.mirror.maybe_refresh()
    assert _calls(url, "hgetall") == before  # nothing changed: nothing read
    assert a.submit("t1", FAST, T0).account_id == "a1"
    a.complete("t1", 30.0, T0 + 40)
    assert a.submit("t2", FAST, T0 + 41).account_id == "a1"  # in flight now
    seen = b.ledger.accounts["a1"]
    assert (seen.in_flight, seen.fast_ms) == (0, hours_to_ms(1))  # B is stale
    before = _calls(url, "hgetall")
    clock.t += 2
    b.mirror.maybe_refresh()
    assert _calls(url, "hgetall") - before == 1
    seen = b.ledger.accounts["a1"]
    assert (seen.in_flight, seen.fast_ms) == (1, hours_to_ms(1) - 30_000)
    assert b.mirror.lver["a1"] == a.mirror.lver["a1"]  # B's next CAS holds


def test_mirror_sync_sees_a_user_change_and_a_lease_expiry_L5(url: str) -> None:
    """L5 and an adopted lease, each made by another process, reach the mirror by
    ``sync`` alone (a setting set elsewhere; room given back by an expiry)."""
    clock = Clock()
    a, b = two(url, [acc("a1", max_in_flight=5), acc("a2")], clock, refresh_interval=1.0,
               lease_seconds=5.0)
    assert a.submit("t1", FAST, T0).account_id == "a1"
    a.set_setting("a2", Setting.RELAX, T0 + 1)
    clock.t += 2
    b.mirror.maybe_refresh()
    assert b.ledger.accounts["a1"].in_flight == 1
    assert b.ledger.accounts["a2"].setting is Setting.RELAX
    clock.t += 10  # A's lease on t1 lapses: B adopts it (the room comes back)
    assert b.leases.renew_and_expire(b.mirror.ids) == ["t1"]
    clock.t += 2
    a.mirror.maybe_refresh()
    assert a.ledger.accounts["a1"].in_flight == 0


def test_mirror_sync_skips_what_this_process_wrote_alone_R1(url: str) -> None:
    """R1/L1: an account this process alone reserved on and charged is exact in
    its mirror (the scripts answered the version they left), so the next sync
    reads nothing; once another process writes it too, the sync reads it."""
    clock = Clock()
    a, b = two(url, [acc("a1", max_in_flight=5), acc("a2")], clock, refresh_interval=1.0)
    assert a.submit("t1", FAST, T0).account_id == "a1"
    assert a.submit("t2", FAST, T0).account_id == "a2"
    a.complete("t1", 30.0, T0 + 40)
    [out] = a.complete_many([("t2", 10.0)], T0 + 41)
    assert not isinstance(out, NotInFlight)
    before = _calls(url, "hgetall")
    clock.t += 2
    a.mirror.maybe_refresh()
    assert _calls(url, "hgetall") == before
    assert b.submit("t3", FAST, T0 + 42).account_id == "a1"
    assert a.submit("t4", FAST, T0 + 43).account_id == "a1"  # its script ran after B's
    before = _calls(url, "hgetall")
    clock.t += 2
    a.mirror.maybe_refresh()
    assert _calls(url, "hgetall") - before == 1
    fresh = b.accounts()
    for mine in a.ledger.accounts.values():
        theirs = next(x for x in fresh if x.id == mine.id)
        assert (mine.in_flight, mine.reserved_ms, mine.fast_ms) == (
            theirs.in_flight, theirs.reserved_ms, theirs.fast_ms)


def test_a_reservation_whose_pipeline_failed_is_read_again_at_the_next_sync_R1(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """R1: a round whose pipeline raised (Redis unreachable) leaves its optimistic
    reservation in the mirror only; Redis' ``ver`` did not move, so the mirror
    forgets the account and the next sync reads the room back from Redis."""
    import redis

    import router.stores.redis_reserve as reserve

    clock = Clock()
    a, _b = two(url, [acc("a1", max_in_flight=5), acc("a2")], clock, refresh_interval=1.0)

    def down(self: Any, raise_on_error: bool = True) -> list[Any]:
        raise redis.ConnectionError("store down")

    monkeypatch.setattr(reserve.ScriptPipe, "execute", down)
    with pytest.raises(redis.ConnectionError):
        a.submit("t1", FAST, T0)
    monkeypatch.undo()
    assert a.ledger.accounts["a1"].in_flight == 1  # the mirror went ahead of Redis
    clock.t += 2
    a.mirror.maybe_refresh()
    assert a.ledger.accounts["a1"].in_flight == 0
