"""The simulator's pre-parsed requests: ``child_request`` and ``Pool.submit_parsed``
give exactly what ``parse_request`` and ``Pool.submit`` give for the same body."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from _util import T0, acc

from router.accounts import CHILD_TYPES
from router.errors import InvalidRequest
from router.pool import Pool
from router.requests import child_request, parse_request
from simulations.scenario import GeneratorModel
from simulations.workload import build_templates


@pytest.mark.parametrize("task_type", sorted(CHILD_TYPES))
def test_child_request_equals_parse_request(task_type: str) -> None:
    body = {"model": "midjourney", "task_type": task_type,
            "input": {"origin_task_id": "t12"}}
    assert child_request(task_type, "t12") == parse_request(body)


@pytest.mark.parametrize(("task_type", "origin"), [("imagine", "t1"), ("upscale", " "),
                                                   ("upscale", "")])
def test_child_request_invalid_raises_as_parse_request(task_type: str, origin: str) -> None:
    body = {"model": "midjourney", "task_type": task_type,
            "input": {"origin_task_id": origin}}
    with pytest.raises(InvalidRequest) as want:
        parse_request(body)
    with pytest.raises(InvalidRequest) as got:
        child_request(task_type, origin)
    assert str(got.value) == str(want.value)


def _pools() -> tuple[Pool, Pool]:
    accs = [acc(f"a{k}", "pro" if k % 2 else "standard") for k in range(3)]
    return (Pool(copy.deepcopy(accs), explain=False), Pool(copy.deepcopy(accs), explain=False))


def test_submit_parsed_equals_submit() -> None:
    """Every generator template, then children of each, on two identical pools."""
    templates, _modes, _keys = build_templates(GeneratorModel())
    a, b = _pools()
    bodies: list[dict[str, Any]] = list(templates) * 3
    now = T0
    for k, body in enumerate(bodies):
        now += 1.0
        tid = f"t{k}"
        da = a.submit(tid, body, now)
        db = b.submit_parsed(tid, parse_request(body), now)
        assert da == db
        for t in sorted(CHILD_TYPES)[:2]:
            now += 1.0
            cid = f"{tid}-{t}"
            child = {"model": "midjourney", "task_type": t, "input": {"origin_task_id": tid}}
            assert a.submit(cid, child, now) == b.submit_parsed(cid, child_request(t, tid),
                                                                now)
        if k % 2 and da.error is None:
            assert a.complete(tid, 30.0, now) == b.complete(tid, 30.0, now)
    assert a.drain() == b.drain()
    assert {i: repr(x) for i, x in a.accounts.items()} == \
        {i: repr(x) for i, x in b.accounts.items()}
