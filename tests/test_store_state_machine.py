"""The memory store and the Redis store are the same ledger (L0-L6, B1, R1-R9, H1-H4).

A Hypothesis rule-based machine applies the same operations (submits of every
kind, completions, duplicate completions, failures, cancellations, status and
setting changes, time jumps across renewals; timed statuses (H1), accounts with
a daily cap (H2) and a minimum gap (H3), ``fast_exhausted`` fails that re-route
(H4)) to a ``MemoryStore`` and to a ``RedisStore`` on a real ``redis-server``,
and requires identical decisions, outcomes, notifications, recoveries and
account state (the H2 day count and the H3 last-routed time included) after
every step. The Redis store's clock is frozen, so a lost-race round happens at
the same routing time as in one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from redis_server import redis_server

from router.accounts import Account, InactiveWindow, Plan, Setting, Status, hours_to_ms
from router.decision import Decision
from router.errors import RouterError
from router.ledger import Policy
from router.stores.memory import MemoryStore
from router.stores.redis_store import RedisStore, connect, load_into_redis
from router.strategies import Strategy
from router.timeutil import parse_time

T0 = parse_time("2026-11-30T20:00:00Z")


def make_accounts() -> list[Account]:
    """A small pool that reaches flips (L3), renewals (L4), B1, T1, a daily cap
    (H2: a1, p1) and gaps (H3: p1 one second, r1 ten minutes, so the ticks of 1 s
    and 600 s land exactly on a gap's end) quickly."""
    return [
        Account("a1", Plan.STANDARD, fast_ms=hours_to_ms(0.05), max_in_flight=2,
                renews_at=parse_time("2026-12-01T00:00:00Z"), max_jobs_per_day=2),
        Account("p1", Plan.PRO, fast_ms=hours_to_ms(0.03), max_in_flight=2,
                max_jobs_per_day=3, min_gap_s=1.0),
        Account("a2", Plan.PRO, setting=Setting.TURBO, fast_ms=hours_to_ms(0.04),
                max_in_flight=3, bot_id=11),
        Account("b1", Plan.BASIC, fast_ms=hours_to_ms(0.03), max_in_flight=2, bot_id=7,
                renews_at=parse_time("2026-12-02T00:00:00Z")),
        Account("r1", Plan.MEGA, setting=Setting.RELAX, max_in_flight=2,
                inactive_window=InactiveWindow(2 * 3600, 4 * 3600), min_gap_s=600.0),
        Account("k1", Plan.STANDARD, backup=True, max_in_flight=2),
    ]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def _state(acc: Account) -> tuple[Any, ...]:
    return (acc.id, acc.setting, acc.status, acc.fast_ms, acc.in_flight, acc.reserved_ms,
            acc.flipped_from, acc.renewals_done, acc.next_renewal_at, acc.period,
            acc.history, acc.jobs_day, acc.jobs_today, acc.last_routed_at)


def _decision(d: Decision) -> tuple[Any, ...]:
    return (d.pool, d.account_id, d.requested_mode, d.mode_source, d.effective_mode,
            d.fallback, d.error.code if d.error else None, d.reserved_ms, d.pinned,
            d.explanation, d.rejections)


def _pacing_events(d: Decision) -> None:
    """Label the runs where a cap or a gap decided something (H2, H3)."""
    for text in [d.explanation or "", *(d.rejections or {}).values()]:
        for tag in ("H2", "H3"):
            if tag in text:
                event(f"{tag} applied")


BODIES = st.sampled_from([
    {"process_mode": "fast"}, {"process_mode": "turbo"}, {"process_mode": "relax"},
    {"prompt": "x --fast"}, {}, {"process_mode": "fast", "bot_id": 7},
    {"process_mode": "relax", "bot_id": 11}, {"process_mode": "fast", "bot_id": 99},
    {"process_mode": "fast", "public": True},
])


class SameLedger(RuleBasedStateMachine):
    url: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.n = 0
        self.ids: list[str] = []

    @initialize(strategy=st.sampled_from(list(Strategy)), fallback=st.booleans(),
                restore=st.booleans())
    def setup(self, strategy: Strategy, fallback: bool, restore: bool) -> None:
        def policy() -> Policy:
            return Policy(strategy=strategy, seed=3, fallback_on_saturation=fallback,
                          restore_fast_on_renewal=restore)
        client = connect(self.url)
        client.flushdb()
        load_into_redis(client, make_accounts(), policy(), T0)
        self.mem = MemoryStore(make_accounts(), policy(), start_at=T0)
        self.red = RedisStore(client, owner="sm", lease_seconds=3600.0,
                              refresh_interval=3600.0, clock=lambda: 1000.0)
        self.mem.drain()
        self.red.drain()

    def teardown(self) -> None:
        if hasattr(self, "red"):
            self.red.close()

    def _both(self, op: str, *args: Any) -> tuple[Any, Any]:
        out: list[Any] = []
        for store in (self.mem, self.red):
            try:
                out.append(getattr(store, op)(*args))
            except RouterError as exc:
                out.append(("error", exc.code))
        return out[0], out[1]

    @rule(dt=st.sampled_from([0.0, 1.0, 600.0, 3 * 3600.0, 86_400.0, 40 * 86_400.0]))
    def tick(self, dt: float) -> None:
        self.now += dt
        self._both("advance", self.now)

    @rule(spec=BODIES)
    def submit(self, spec: dict[str, Any]) -> None:
        self.n += 1
        task_id = f"t{self.n}"
        inp: dict[str, Any] = {"prompt": spec.get("prompt", "a cat")}
        for k in ("process_mode", "bot_id"):
            if k in spec:
                inp[k] = spec[k]
        body = {"model": "midjourney", "task_type": "imagine", "input": inp,
                "config": {"service_mode": "public" if spec.get("public") else ""}}
        a, b = self._both("submit", task_id, body, self.now)
        assert _decision(a) == _decision(b)
        _pacing_events(a)
        if a.error is None:
            self.ids.append(task_id)

    @rule(specs=st.lists(BODIES, min_size=1, max_size=8), with_child=st.booleans())
    def submit_batch(self, specs: list[dict[str, Any]], with_child: bool) -> None:
        """``submit_many`` (one Redis round trip) decides as submits one by one do."""
        items: list[tuple[str, Any, float | None]] = []
        for spec in specs:
            self.n += 1
            inp: dict[str, Any] = {"prompt": "batch"}
            for k in ("process_mode", "bot_id"):
                if k in spec:
                    inp[k] = spec[k]
            items.append((f"t{self.n}", {"model": "midjourney", "task_type": "imagine",
                                         "input": inp}, None))
            if with_child:  # a child of the task just before it in the same batch
                self.n += 1
                items.append((f"t{self.n}", {"model": "midjourney", "task_type": "variation",
                                             "input": {"origin_task_id": f"t{self.n - 1}",
                                                       "index": "1"}}, 30.0))
        a, b = self._both("submit_many", items, self.now)
        assert [_decision(x) for x in a] == [_decision(x) for x in b]
        for x in a:
            _pacing_events(x)
        self.ids += [x.task_id for x in a if x.error is None]

    @precondition(lambda self: bool(self.ids))
    @rule(data=st.data())
    def child(self, data: st.DataObject) -> None:
        parent = data.draw(st.sampled_from(self.ids))
        self.n += 1
        task_id = f"t{self.n}"
        body = {"model": "midjourney", "task_type": "upscale",
                "input": {"origin_task_id": parent, "index": "1"}}
        a, b = self._both("submit", task_id, body, self.now)
        assert _decision(a) == _decision(b)
        if a.error is None:
            self.ids.append(task_id)

    @precondition(lambda self: bool(self.ids))
    @rule(data=st.data(), gpu=st.sampled_from([0.0, 10.0, 58.2, 200.0]),
          op=st.sampled_from(["complete", "complete", "fail", "cancel"]))
    def finish(self, data: st.DataObject, gpu: float, op: str) -> None:
        """L1: charge once; a repeat (duplicate delivery) is not_in_flight in both."""
        task_id = data.draw(st.sampled_from(self.ids))
        args: tuple[Any, ...] = (task_id, gpu, self.now) if op == "complete" else (task_id,
                                                                                  self.now)
        a, b = self._both(op, *args)
        assert a == b

    @precondition(lambda self: bool(self.ids))
    @rule(data=st.data())
    def finish_batch(self, data: st.DataObject) -> None:
        """``complete_many`` (one round trip per round) charges as one by one (L1-L3)."""
        picked = data.draw(st.lists(st.sampled_from(self.ids), min_size=1, max_size=8))
        gpus = data.draw(st.lists(st.sampled_from([0.0, 10.0, 58.2, 200.0]),
                                  min_size=len(picked), max_size=len(picked)))
        a, b = self._both("complete_many", list(zip(picked, gpus, strict=True)), self.now)

        def norm(xs: list[Any]) -> list[Any]:
            return [x.code if isinstance(x, RouterError) else x for x in xs]
        assert norm(a) == norm(b)

    @rule(acc=st.sampled_from(["a1", "p1", "a2", "b1", "r1", "k1", "nope"]),
          status=st.sampled_from(list(Status)))
    def set_status(self, acc: str, status: Status) -> None:
        a, b = self._both("set_status", acc, status, self.now)
        assert (a if isinstance(a, tuple) else _state(a)) == (
            b if isinstance(b, tuple) else _state(b))

    @rule(acc=st.sampled_from(["a1", "p1", "a2", "b1", "r1", "k1"]),
          status=st.sampled_from([Status.DISABLED, Status.BANNED, Status.CAPTCHA_REQUIRED]),
          dt=st.sampled_from([1.0, 600.0, 3 * 3600.0, 86_400.0, 50 * 86_400.0]))
    def set_status_until(self, acc: str, status: Status, dt: float) -> None:
        """H1: a timed status; the recovery at ``now + dt`` (a renewal first on a
        tie, L6) unless a later set_status replaces it."""
        a, b = self._both("set_status_until", acc, status, self.now, self.now + dt)
        assert _state(a) == _state(b)

    @precondition(lambda self: bool(self.ids))
    @rule(data=st.data())
    def fail_fast_exhausted(self, data: st.DataObject) -> None:
        """H4: no charge, fast time zeroed, L3's flip, the same id routed again;
        a relax task's is an ordinary fail; a repeat is not_in_flight in both."""
        task_id = data.draw(st.sampled_from(self.ids))
        a, b = self._both("fail_fast_exhausted", task_id, self.now)
        if isinstance(a, tuple) and a and a[0] == "error":
            assert a == b
            return
        (out_a, d_a), (out_b, d_b) = a, b
        assert out_a == out_b
        assert (d_a is None) == (d_b is None)
        if d_a is not None:
            assert _decision(d_a) == _decision(d_b)
            event(f"H4 re-routed: {d_a.error.code if d_a.error else 'accepted'}")

    @rule(acc=st.sampled_from(["a1", "p1", "a2", "b1", "r1", "k1"]),
          setting=st.sampled_from(list(Setting)))
    def set_setting(self, acc: str, setting: Setting) -> None:
        self._both("set_setting", acc, setting, self.now)

    @invariant()
    def same_state(self) -> None:
        if not hasattr(self, "red"):
            return
        mem = [_state(a) for a in self.mem.accounts()]
        red = [_state(a) for a in self.red.accounts()]
        assert mem == red
        mn, mr = self.mem.drain()
        rn, rr = self.red.drain()
        assert [(n.type, n.account_id, n.at) for n in mn] == \
               [(n.type, n.account_id, n.at) for n in rn]
        assert mr == rr
        rec = self.mem.drain_recoveries()
        assert rec == self.red.drain_recoveries()  # H1
        if rec:
            event("H1 recovery")


def test_memory_and_redis_stores_keep_identical_state_L0_L6_B1_H1_H4(redis_url: str) -> None:
    SameLedger.url = redis_url
    run = SameLedger.TestCase
    run.settings = settings(max_examples=100, stateful_step_count=40, deadline=None,
                            suppress_health_check=list(HealthCheck))
    run().runTest()


def test_redis_fixture_is_loopback_only(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.config_get("bind")["bind"] == "127.0.0.1"
