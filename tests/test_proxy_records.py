"""``TaskRecords``: the writes of one event-loop turn go to the store together, and a
read finds a task whether it is ours, written this turn or written by another process."""

from __future__ import annotations

import asyncio
import json
import uuid

from hypothesis import given
from hypothesis import strategies as st

from router.accounts import Mode
from router.decision import Decision
from router.proxy.records import TaskRecords
from router.proxy.tasks import Task, new_task_id, task_data, task_record
from router.stores.memory import MemoryRecords
from router.timeutil import format_time


class CountingRecords(MemoryRecords):
    def __init__(self) -> None:
        super().__init__(lambda acc_id: True)
        self.batches: list[dict[str, str]] = []

    def put_records(self, records: dict[str, str], *, carry: bool = False) -> None:
        self.batches.append(dict(records))
        super().put_records(records)


def test_writes_of_one_turn_go_together_and_the_last_one_wins() -> None:
    store = CountingRecords()
    records = TaskRecords(store, keep_finished=10)

    async def main() -> None:
        task = Task("t1", {"task_type": "imagine"}, 1.0)
        records.save(task)
        task.status = "failed"
        records.save(task)
        records.save(Task("t2", {}, 2.0))
        got = records.get("t1")  # not flushed yet: read from this turn's writes
        assert got is not None and got["status"] == "failed" and store.batches == []
        await asyncio.sleep(0)

    asyncio.run(main())
    assert len(store.batches) == 1 and sorted(store.batches[0]) == ["t1", "t2"]
    assert json.loads(store.batches[0]["t1"])["status"] == "failed"


def test_fetch_reads_another_process_record_off_the_loop() -> None:
    store = CountingRecords()
    store.put_record("elsewhere", json.dumps({"task_id": "elsewhere", "status": "pending"}))
    records = TaskRecords(store, keep_finished=10)
    ours = Task("mine", {}, 1.0)
    records.register(ours)  # no loop: written now
    assert store.get_record("mine") is not None

    async def main() -> tuple[object, object, object]:
        return (await records.fetch("elsewhere"), await records.fetch("mine"),
                await records.fetch("nobody"))

    other, mine, nobody = asyncio.run(main())
    assert other == {"task_id": "elsewhere", "status": "pending"}
    assert isinstance(mine, dict) and mine["task_id"] == "mine"
    assert nobody is None


def test_finished_tasks_past_the_limit_are_forgotten_locally_not_in_the_store() -> None:
    store = CountingRecords()
    records = TaskRecords(store, keep_finished=4)
    for i in range(5):
        task = Task(f"t{i}", {}, float(i))
        records.register(task)
        records.finished(task)
    assert sorted(records.live) == ["t2", "t3", "t4"]
    assert records.get("t0") is not None  # still readable from the store


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
_stamps = st.floats(min_value=0, max_value=4e9, allow_nan=False) | st.integers(
    0, 4_000_000_000).map(lambda s: s + 0.9999995)


@given(body=st.dictionaries(st.sampled_from(["model", "task_type", "input", "config"]), _json)
       | _json, created=_stamps, ended=st.none() | _stamps, status=st.sampled_from(
           ["pending", "processing", "completed", "failed"]),
       output=st.dictionaries(st.text(max_size=5), _json, max_size=2),
       error=st.none() | st.dictionaries(st.text(max_size=5), _json, max_size=2))
def test_a_record_is_its_task_data_as_json(body: object, created: float, ended: float | None,
                                           status: str, output: dict[str, object],
                                           error: dict[str, object] | None) -> None:
    """A record (encoded from parts cached on the task) is ``json.dumps`` of the task's
    ``data`` byte for byte, before and after the task changes, and its times are
    ``format_time``'s."""
    task = Task("t1", body, created)
    assert task_record(task) == json.dumps(task_data(task))
    task.status, task.ended_at, task.output, task.error = status, ended, output, error
    task.gpu_seconds, task.note = 1.5, "n"
    assert task_record(task) == json.dumps(task_data(task))
    assert task_data(task)["meta"]["created_at"] == format_time(created)
    if ended:
        assert task_data(task)["meta"]["ended_at"] == format_time(ended)


_decisions = st.builds(
    Decision, task_id=st.just("t1"), pool=st.sampled_from(["private", "public"]),
    account_id=st.none() | st.sampled_from(["acc1", "é\"2"]),
    requested_mode=st.none() | st.sampled_from(list(Mode)),
    mode_source=st.none() | st.sampled_from(["process_mode", "prompt", "default"]),
    effective_mode=st.none() | st.sampled_from(list(Mode)), fallback=st.booleans(),
    explanation=st.none() | st.text(max_size=40))


@given(first=_decisions, second=_decisions, started=st.none() | _stamps,
       queued=st.booleans(), note=st.none() | st.text(max_size=5),
       reroutes=st.lists(st.dictionaries(st.text(max_size=3), _json, max_size=2), max_size=2))
def test_a_routed_task_record_is_its_data_as_json_when_its_decision_changes(
        first: Decision, second: Decision, started: float | None, queued: bool,
        note: str | None, reroutes: list[dict[str, object]]) -> None:
    """The decision's part of ``meta`` is encoded once per decision (X1's explanation
    is the longest text of a record): the record still equals ``json.dumps`` of the
    task's data after the decision is replaced (H4, adoption) or changed in place,
    and with or without the fields that follow it."""
    task = Task("t1", {"model": "midjourney"}, 1_796_000_000.5, decision=first)
    assert task_record(task) == json.dumps(task_data(task))
    task.started_at, task.queued, task.note, task.reroutes = started, queued, note, reroutes
    assert task_record(task) == json.dumps(task_data(task))
    task.decision = second
    assert task_record(task) == json.dumps(task_data(task))
    second.explanation = (second.explanation or "") + " changed"
    second.error = None
    assert task_record(task) == json.dumps(task_data(task))


def test_task_ids_are_version_4_uuids_in_their_usual_form() -> None:
    """``new_task_id`` gives what ``str(uuid.uuid4())`` gives: the canonical form,
    version 4, the RFC 4122 variant, and the other 122 bits random (each bit seen
    both set and clear over many ids, none repeated)."""
    ids = [new_task_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    ones = 0
    zeros = 0
    for text in ids:
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 4 and u.variant == uuid.RFC_4122
        ones |= u.int
        zeros |= ~u.int
    fixed = (0xF << 76) | (0x3 << 62)  # the version and variant bits
    mask = (1 << 128) - 1
    assert ones & ~fixed & mask == ~fixed & mask
    assert zeros & ~fixed & mask == ~fixed & mask
