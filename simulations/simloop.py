"""The harness's event loop: the SimPy callbacks that move each task through
``router.pool.Pool`` and the execution model (``simulations.harness`` is the
public face: ``Simulation``, ``RunOptions``, ``SimResult``).

This module and the account-side state it drives (``simulations.midjourney``,
``simulations.central_queue``) are compiled with the router's core by ``make
compile`` (issue 13: the per-task work of the harness, beyond SimPy's and the
router's, was interpreted bytecode); ``BYOA_PURE=1`` runs them from these sources,
with the same events scheduled in the same order (``router.compiled``).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import simpy
from simpy.events import Event, Timeout

from router.accounts import TASK_TYPES, Account, Status, seconds_to_ms
from router.errors import ERROR_CODES as ERROR_TABLE
from router.errors import InvalidRequest, NotInFlight, RouterError, UnknownAccount
from router.pool import Pool
from router.requests import ParsedRequest, child_request, parse_request
from simulations.central_queue import CentralQueue
from simulations.midjourney import RELAX, AccountExec, ExecParams
from simulations.scenario import ExecutionModel
from simulations.workload import MODE_CODE, Workload

if TYPE_CHECKING:
    from simulations.harness import RunOptions, SimResult

log = logging.getLogger("simulations.harness")

# Task status codes (``SimResult.status``).
PENDING: Final = 0
REJECTED: Final = 1
COMPLETED: Final = 2
FAILED: Final = 3
RUNNING: Final = 4
QUEUED: Final = 5
CANCELLED: Final = 6
PUBLIC: Final = 7
WAITING: Final = 8
STATUS_NAMES: Final = ("not_arrived", "rejected", "completed", "failed", "unfinished",
                       "queued", "cancelled", "public", "waiting_parent")
#: The codes a decision can carry, as small integers (``SimResult.error``; 0: none): the
#: routing codes of ``router.errors.ERROR_CODES`` but those of event lines only (L1, L5).
_EVENT_LINE_CODES = frozenset({NotInFlight.code, UnknownAccount.code})
ERROR_CODES: Final[tuple[str, ...]] = ("", *(c for c, e in ERROR_TABLE.items()
                                             if e.router and c not in _EVENT_LINE_CODES))
ERROR_INDEX: Final = {c: i for i, c in enumerate(ERROR_CODES)}
_FINAL: Final = frozenset({REJECTED, COMPLETED, FAILED, CANCELLED, PUBLIC})
# Final aliases of imported names: statics in the compiled core (an imported name is
# otherwise a module-dict look-up at every use).
_MODE_CODE: Final = MODE_CODE
_Timeout: Final = Timeout


class _Cols:
    """Per-task columns as Python lists while the run goes (fast item access);
    ``to_result`` turns them into the ``SimResult`` numpy arrays."""

    __slots__ = ("acc", "attempts", "charged_ms", "eff", "end", "error", "fallback",
                 "q_enter", "queued_s", "ready", "req", "routed", "start", "status")

    def __init__(self, n: int) -> None:
        nan = float("nan")
        self.ready = [nan] * n
        self.routed = [nan] * n
        self.start = [nan] * n
        self.end = [nan] * n
        self.acc = [-1] * n
        self.req = [-1] * n
        self.eff = [-1] * n
        self.fallback = [False] * n
        self.charged_ms = [0] * n
        self.status = [PENDING] * n
        self.error = [0] * n
        self.attempts = [0] * n
        self.queued_s = [0.0] * n
        self.q_enter = [nan] * n

    def to_result(self, r: SimResult) -> None:
        r.ready, r.routed = np.array(self.ready), np.array(self.routed)
        r.start, r.end = np.array(self.start), np.array(self.end)
        r.acc = np.array(self.acc, np.int32)
        r.req, r.eff = np.array(self.req, np.int8), np.array(self.eff, np.int8)
        r.fallback = np.array(self.fallback, np.bool_)
        r.charged_ms = np.array(self.charged_ms, np.int64)
        r.status, r.error = np.array(self.status, np.int8), np.array(self.error, np.int8)
        r.attempts = np.array(self.attempts, np.int32)
        r.queued_s, r.q_enter = np.array(self.queued_s), np.array(self.q_enter)


class SimLoop:
    """One run's state and event callbacks (``simulations.harness.Simulation``
    builds it, with the run's ``Pool`` and its empty ``SimResult``)."""

    def __init__(self, pool: Pool, accounts: list[Account], workload: Workload,
                 execution: ExecutionModel, options: RunOptions, res: SimResult,
                 seed: int = 0) -> None:
        self.pool = pool
        self.accounts = accounts
        self.wl = workload
        self.opt = options
        self.params = ExecParams.from_model(execution)
        self.env = simpy.Environment(initial_time=options.start)
        self.acc_index = {a.id: k for k, a in enumerate(accounts)}
        conc = execution.concurrency
        self.execs = [AccountExec(k, a, conc[a.plan.value]["fast"], conc[a.plan.value]["relax"])
                      for k, a in enumerate(accounts)]
        n = workload.n
        self.c = _Cols(n)
        self.res = res
        self.res.queue_t0 = options.start
        self.queue = CentralQueue(options.start, self.c.q_enter, self.c.queued_s)
        self.parked: dict[int, list[int]] = {}
        self.outstanding = 0
        self.stop_children = False
        self.incident_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(7)[6])
        # Hot locals.
        self._gpu: list[float] = workload.gpu.tolist()
        self._fail: list[bool] = workload.fail.tolist()
        self._u: list[float] = workload.u_relax.tolist()
        self._bodies = workload.bodies
        self._generated = workload.generated_followups
        self._type = list(TASK_TYPES)
        self._parent: list[int] = workload.parent.tolist()
        self._est = workload.estimates or None
        self._incidents = bool(options.ban_rate or options.captcha_rate)
        ids = workload.task_ids
        self._tid: Callable[[int], str] = ids.__getitem__ if ids is not None else "t{}".format
        # Requests resolved once per distinct body: the generator's root templates are
        # parsed here (None: invalid, left to ``Pool.submit`` for its error decision).
        self._tpl_req = [_parsed(t) for t in workload.templates]
        self._code: list[int] = workload.body_code.tolist()
        self._type_code: list[int] = workload.type_code.tolist()
        # R9 estimates per task type, as ``route`` would compute them at every call.
        pol = self.pool.policy
        self._est_ms = {t: pol.estimate_ms(t) for t in TASK_TYPES}
        # Task ids, formatted once (at the first submit) for generated runs.
        self._tids: list[str | None] = [None] * n if ids is None else list(ids)
        self._cptr: list[int] = workload.child_ptr.tolist()
        self._cidx: list[int] = workload.child_idx.tolist()
        self._think: list[float] = workload.think.tolist()

    # ------------------------------------------------------------ workload side
    def _body(self, i: int) -> Any:
        wl = self.wl
        if wl.bodies is not None:
            return wl.bodies[i]
        code = self._code[i]
        if code >= 0:
            return wl.templates[code]
        return {"model": "midjourney", "task_type": self._type[self._type_code[i]],
                "input": {"origin_task_id": self._tid(self._parent[i])}}

    def _request(self, i: int) -> ParsedRequest | None:
        """Task ``i``'s parsed request (None: invalid, ``Pool.submit`` says why)."""
        if self._bodies is not None:
            return _parsed(self._bodies[i])
        code = self._code[i]
        if code >= 0:
            return self._tpl_req[code]
        p = self._parent[i]
        return child_request(self._type[self._type_code[i]], self._tids[p] or self._tid(p))

    def _arrivals(self) -> tuple[list[int], list[float]]:
        """The tasks that arrive at a time of their own (roots, trace tasks), in
        time order, and their times."""
        arr = self.wl.arrival
        idx = np.nonzero(~np.isnan(arr))[0]
        idx = idx[np.argsort(arr[idx], kind="stable")]
        return idx.tolist(), arr[idx].tolist()

    def _feeder(self, order: list[int], times: list[float]) -> Generator[Event, Any, None]:
        """Roots (and trace tasks) arrive at their times, until the horizon."""
        env = self.env
        end = self.opt.horizon_end
        for i, t in zip(order, times, strict=True):
            if t >= end:
                break
            if t > env.now:
                yield env.timeout(t - env.now)
            self.outstanding += 1
            self._arrive(i)

    def _arrive(self, i: int) -> None:
        """A task is ready to submit; trace children wait for their parent's end."""
        c = self.c
        p = self._parent[i]
        if p >= 0 and not self._generated and c.status[p] not in _FINAL:
            c.status[i] = WAITING
            self.parked.setdefault(p, []).append(i)
            return
        c.ready[i] = self.env.now
        self._submit(i, first=True)

    def _on_followup(self, ev: Event) -> None:
        self._arrive(cast(int, ev.value))

    def _children(self, i: int, completed: bool) -> None:
        """Follow-ups after a task finishes: generated ones after their think time
        (only when it completed), parked trace children now."""
        if self._generated:
            if not completed or self.stop_children:
                return
            ptr = self._cptr
            a, b = ptr[i], ptr[i + 1]
            if a == b:
                return
            env, think = self.env, self._think
            for c in self._cidx[a:b]:
                self.outstanding += 1
                _Timeout(env, think[c], c).callbacks.append(self._on_followup)
        else:
            for ch in self.parked.pop(i, ()):
                self.c.ready[ch] = self.env.now
                self._submit(ch, first=True)

    # ------------------------------------------------------------ routing side
    def _submit(self, i: int, first: bool) -> bool:
        """Route task ``i`` now. True when it left the central queue's concern
        (accepted or rejected), False when it is (still) ``pool_saturated``."""
        c, now = self.c, self.env.now
        est = self._est.get(i) if self._est else None
        tid = self._tids[i]
        if tid is None:
            tid = self._tids[i] = self._tid(i)
        req = self._request(i)
        if req is None:
            d = self.pool.submit(tid, self._body(i), now, estimated_gpu_seconds=est)
        else:
            d = self.pool.submit_parsed(tid, req, now, self._est_ms.get(req.task_type)
                                        if est is None else seconds_to_ms(est))
        c.attempts[i] += 1
        if d.requested_mode is not None:
            c.req[i] = _MODE_CODE[d.requested_mode]
        err = d.error
        if err is None:
            c.routed[i] = now
            assert d.effective_mode is not None
            eff = _MODE_CODE[d.effective_mode]
            c.eff[i] = eff
            c.fallback[i] = d.fallback
            if d.account_id is None:  # P1: GoAPI's public pool, outside our fleet
                c.status[i] = PUBLIC
                c.end[i] = now
                self._final(i)
                self._children(i, completed=True)
                return True
            k = self.acc_index[d.account_id]
            c.acc[i] = k
            c.status[i] = RUNNING
            ex = self.execs[k]
            if eff == RELAX:
                wait = ex.relax_wait(self._u[i], self.params)
                if wait > 0:
                    _Timeout(self.env, wait, i).callbacks.append(self._on_relax_ready)
                    return True
            self._start_or_wait(ex, i, eff)
            return True
        if err.retryable:
            if first:
                self._enqueue(i, d.pinned)
            return False
        c.status[i] = REJECTED
        c.error[i] = ERROR_INDEX.get(err.code, 0)
        c.end[i] = now
        self._final(i)
        self._children(i, completed=False)
        return True

    def _final(self, i: int) -> None:
        self.outstanding -= 1

    def _on_relax_ready(self, ev: Event) -> None:
        i = cast(int, ev.value)
        if self.c.status[i] == CANCELLED:
            return
        self._start_or_wait(self.execs[self.c.acc[i]], i, RELAX)

    def _start_or_wait(self, ex: AccountExec, i: int, mode: int) -> None:
        """Task ``i`` takes a slot of its kind now, or waits in the account's queue.
        A queue holds tasks only while its slots are all taken (``_start_ready``
        runs whenever a slot frees), so this is ``enqueue`` + ``_start_ready``."""
        if mode == RELAX:
            if ex.relax_q or ex.running_relax >= ex.relax_slots:
                ex.relax_q.append(i)
                return
            ex.running_relax += 1
        else:
            if ex.fast_q or ex.running_fast >= ex.fast_slots:
                ex.fast_q.append(i)
                return
            ex.running_fast += 1
        now = self.env.now
        self.c.start[i] = now
        _Timeout(self.env, self.params.run_seconds(self._gpu[i], mode), i
                ).callbacks.append(self._on_finish)

    def _start_ready(self, ex: AccountExec) -> None:
        c, env, p = self.c, self.env, self.params
        for i in ex.startable():
            c.start[i] = env.now
            dur = p.run_seconds(self._gpu[i], c.eff[i])
            _Timeout(env, dur, i).callbacks.append(self._on_finish)

    def _on_finish(self, ev: Event) -> None:
        i = cast(int, ev.value)
        c, now = self.c, self.env.now
        k = c.acc[i]
        ex = self.execs[k]
        mode = c.eff[i]
        ex.release(mode)
        tid = self._tids[i] or self._tid(i)
        completed = not self._fail[i]
        if completed:
            out = self.pool.complete(tid, self._gpu[i], now)
            c.charged_ms[i] = out.charged_ms
            c.status[i] = COMPLETED
            if mode == RELAX:
                ex.add_relax_use(self._gpu[i])
        else:
            self.pool.fail(tid, now)
            c.status[i] = FAILED
        c.end[i] = now
        self.outstanding -= 1
        if self._incidents:
            self._incident(ex)
        if ex.fast_q or ex.relax_q:
            self._start_ready(ex)
        if self.queue.length:
            self._retry(k)
        self._children(i, completed)

    # ----------------------------------------------------------- central queue
    def _enqueue(self, i: int, pinned: bool) -> None:
        """R5: a ``pool_saturated`` task waits (pinned children in their account's lane)."""
        c = self.c
        c.status[i] = QUEUED
        p = self._parent[i]
        lane = c.acc[p] if pinned and p >= 0 and c.acc[p] >= 0 else None
        self.queue.push(i, self.env.now, pinned_to=lane, relax=c.req[i] == RELAX)

    def _resubmit(self, i: int) -> bool:
        return self._submit(i, first=False)

    def _retry(self, k: int | None) -> None:
        """Late binding: route queued tasks again (``k``: a slot freed on account k)."""
        self.queue.retry(self._resubmit, self.env.now, k)

    def _ticker(self) -> Generator[Event, Any, None]:
        """Every ``retry_s``: retry the queue (inactive windows end without an event)."""
        while True:
            yield self.env.timeout(self.opt.retry_s)
            self._retry(None)

    def _sampler(self) -> Generator[Event, Any, None]:
        """Fast time left per account, every ``sample_s`` (renewals applied first)."""
        env, res, opt = self.env, self.res, self.opt
        span = opt.horizon_end - opt.start
        while env.now <= opt.horizon_end:
            self.pool.advance(env.now)
            res.sample_t.append(env.now)
            res.sample_fast_ms.append(np.fromiter((a.fast_ms for a in self.accounts),
                                                  np.int64, len(self.accounts)))
            if opt.progress is not None:
                opt.progress(min(1.0, (env.now - opt.start) / span))
            yield env.timeout(opt.sample_s)

    # ---------------------------------------------------- incidents and events
    def _incident(self, ex: AccountExec) -> None:
        """Optional bans and captchas: a status change until a time (L5, H1)."""
        acc = ex.acc
        if acc.status is not Status.ACTIVE:
            return
        u = float(self.incident_rng.random())
        opt = self.opt
        if u < opt.ban_rate:
            self._set_status_for(ex, Status.BANNED, opt.ban_s)
        elif u < opt.ban_rate + opt.captcha_rate:
            self._set_status_for(ex, Status.CAPTCHA_REQUIRED, opt.captcha_s)

    def _set_status_for(self, ex: AccountExec, status: Status, seconds: float) -> None:
        """An incident is a timed ``set_status`` (H1): the router itself makes the
        account active again at ``until``; the harness only wakes up then."""
        now = self.env.now
        until = now + seconds
        self.pool.set_status(ex.acc.id, status, now, until=until)
        self.res.incidents.append((now, ex.acc.id, status.value))
        _Timeout(self.env, seconds).callbacks.append(self._on_until)

    def _on_until(self, ev: Event) -> None:
        """H1: apply the recoveries due now (``Pool.advance``), then retry the queue."""
        self.pool.advance(self.env.now)
        if self._note_recoveries():
            self._retry(None)

    def _note_recoveries(self) -> int:
        """Record the router's H1 recoveries since the last call; how many."""
        got = self.pool.drain_recoveries()
        self.res.recoveries.extend((r.at, r.account_id, r.status_was.value) for r in got)
        return len(got)

    def _account_events(self) -> Generator[Event, Any, None]:
        """Trace ``set_status``/``set_setting`` lines at their times."""
        env = self.env
        for at, acc_id, what, value in self.wl.account_events:
            if at >= self.opt.horizon_end:
                break
            if at > env.now:
                yield env.timeout(at - env.now)
            try:
                if what == "status":
                    self.pool.set_status(acc_id, value, env.now)
                else:
                    self.pool.set_setting(acc_id, value, env.now)
            except RouterError:
                log.warning("trace: %s of unknown account %s ignored", what, acc_id)
            self._retry(None)

    def _cancels(self) -> Generator[Event, Any, None]:
        """Trace ``cancel`` lines: a task still waiting (queue or slot) is cancelled."""
        env, c = self.env, self.c
        for at, i in sorted((t, i) for i, t in self.wl.cancel_at.items()):
            if at >= self.opt.horizon_end:
                break
            if at > env.now:
                yield env.timeout(at - env.now)
            st = c.status[i]
            if st == QUEUED:
                self.queue.remove(i, env.now)
            elif st == RUNNING and c.start[i] != c.start[i]:  # NaN: not started yet
                ex = self.execs[c.acc[i]]
                ex.remove_waiting(i)
                try:
                    self.pool.cancel(self._tid(i), env.now)
                except NotInFlight:
                    continue
                self._retry(c.acc[i])
            else:
                continue
            c.status[i] = CANCELLED
            c.end[i] = env.now
            self._final(i)
            self._children(i, completed=False)

    # ------------------------------------------------------------------- run
    def run(self) -> SimResult:
        """The whole run. The run's long-lived, acyclic state (the per-task columns
        and the workload's lists, O(tasks)) is built first and kept out of the cyclic
        garbage collector's passes until the run ends (``gc.freeze``): each full
        pass otherwise walked every item of every column again (0.45 s of a 5.5 s
        run at 200k roots), for nothing to collect. ``gc.unfreeze`` gives every
        object back to the collector at the end, collected or not as before."""
        env, opt, res = self.env, self.opt, self.res
        arrivals = self._arrivals()
        gc.freeze()
        try:
            self._run(env, opt, arrivals)
        finally:
            gc.unfreeze()
        self.queue.close(env.now)
        res.queue_area, res.queue_entries = self.queue.area, self.queue.entries
        res.queue_t1 = env.now
        res.end_time = env.now
        self.pool.advance(max(env.now, opt.horizon_end))
        self._note_recoveries()
        self.c.to_result(res)
        if opt.progress is not None:
            opt.progress(1.0)
        return res

    def _run(self, env: simpy.Environment, opt: RunOptions,
             arrivals: tuple[list[int], list[float]]) -> None:
        env.process(self._feeder(*arrivals))
        env.process(self._ticker())
        env.process(self._sampler())
        if self.wl.account_events:
            env.process(self._account_events())
        if self.wl.cancel_at:
            env.process(self._cancels())
        env.run(until=opt.horizon_end)
        self.stop_children = True
        if opt.drain:
            limit = opt.horizon_end + opt.drain_limit_s
            while self.outstanding > 0 and env.now < limit:
                env.run(until=min(env.now + 3600.0, limit))


def _parsed(body: Any) -> ParsedRequest | None:
    try:
        return parse_request(body)
    except InvalidRequest:
        return None
